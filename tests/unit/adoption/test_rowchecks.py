"""Every rejection of a stage submission, with its exact message (no database)."""

from datetime import UTC, date, datetime

import pytest

from services.adoption.models import Site
from services.adoption.programmes import Catalogue
from services.adoption.rowchecks import CARE_HOMES, Register, SubmissionIn, check
from shared.auth import Principal, Role

TODAY = date(2023, 5, 10)
CATALOGUE = Catalogue(
    programmes={CARE_HOMES: "Managing deterioration in care homes"},
    tools={CARE_HOMES: {"news2 and soft signs": "NEWS2 and soft signs",
                        "restore2": "NEWS2 and soft signs", "news2": "NEWS2"}},
)
SW = Principal(sub="psc-sw", role=Role.PSC, pscs=frozenset({"SW"}))


def site(code: str, psc: str = "SW", closed_on: date | None = None) -> Site:
    return Site(site_id=code, name="a home", setting_type="care_home", icb_code="QJK",
                psc_code=psc, region="South West", closed_on=closed_on,
                updated_at=datetime(2023, 1, 1, tzinfo=UTC))


REGISTER = Register(
    sites={s.site_id: s for s in (site("1-5868490225"), site("1-999", psc="UCLP"),
                                  site("1-777", closed_on=date(2022, 12, 31)))},
    visible_codes=["1-5868490225", "1-5868490252", "1-777", "1-2416239011"],
)


def row(**over) -> SubmissionIn:
    base = {"site_id": "1-5868490225", "tool": "RESTORE2", "stage": 3,
            "applies_from": "2023-04-01"}
    return SubmissionIn.model_validate({**base, **over})


def reason(by: Principal = SW, **over) -> tuple[str, str] | None:
    refusal = check(row(**over), catalogue=CATALOGUE, register=REGISTER, by=by, today=TODAY)
    return None if refusal is None else (refusal.field, refusal.reason)


def test_a_good_row_passes_and_tools_match_by_alias_without_case():
    assert reason() is None
    assert reason(tool="news2 AND soft signs") is None
    assert reason(tool=None, stage=1) is None


@pytest.mark.parametrize(("over", "expected"), [
    ({"site_id": "1-586849022"},
     ("site_id", "unknown site code '1-586849022' (closest codes: 1-5868490252, 1-5868490225)")),
    ({"site_id": "Z9"}, ("site_id", "unknown site code 'Z9' (no close match)")),
    ({"site_id": "1-999"},
     ("site_id", "site 1-999 is in PSC UCLP, outside this token's scope")),
    ({"site_id": "1-777", "applies_from": "2023-01-01"},
     ("applies_from", "site 1-777 closed on 2022-12-31, on or before applies_from 2023-01-01")),
    ({"stage": 8}, ("stage", "stage must be 0-7, got 8")),
    ({"stage": -1}, ("stage", "stage must be 0-7, got -1")),
    ({"programme": "maternity"},
     ("programme", "unknown programme 'maternity'; known programmes: " + CARE_HOMES)),
    ({"tool": "BOOST"},
     ("tool", f"unknown tool 'BOOST' for programme {CARE_HOMES}; known tools: NEWS2,"
              " NEWS2 and soft signs")),
    ({"applies_from": "2023-05-11"},
     ("applies_from", "applies_from 2023-05-11 is in the future (today is 2023-05-10 in London)")),
])
def test_each_rejection_has_an_exact_message(over, expected):
    assert reason(**over) == expected


def test_suggestions_are_returned_but_never_used():
    refusal = check(row(site_id="1-586849022"), catalogue=CATALOGUE, register=REGISTER, by=SW,
                    today=TODAY)
    assert refusal is not None and refusal.suggestions == ("1-5868490252", "1-5868490225")


def test_closed_site_still_takes_reports_dated_before_it_closed():
    assert reason(site_id="1-777", applies_from="2022-12-30") is None


def test_admin_covers_every_psc():
    assert reason(by=Principal(sub="a", role=Role.ADMIN), site_id="1-999") is None


@pytest.mark.parametrize("bad", [{"stage": "3"}, {"stage": True}, {"stage": 3.0},
                                 {"site_id": "1-1\x00"}, {"extra": 1}])
def test_the_edge_model_refuses_loose_types_nul_and_extra_fields(bad):
    with pytest.raises(ValueError):
        row(**bad)
