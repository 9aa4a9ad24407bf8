"""Soft-sign catalogue and assessment, against hand-written tables."""

import pytest

from services.scoring.domain.softsigns import (
    CATALOGUE,
    PROMPT_ESCALATE,
    PROMPT_TAKE_OBS,
    Source,
    UnknownSoftSigns,
    evaluate,
    lookup,
    unknown_codes,
)

RESTORE2_CODES = ["R2-BREATH", "R2-EATING", "R2-CONFUSION", "R2-SKIN", "R2-MOBILITY",
                  "R2-BOWEL-URINE", "R2-PAIN", "R2-NOT-USUAL", "R2-CONCERN"]
# S-T-O-P-A-N-D-W-A-T-C-H, repeated letters numbered in order.
STOP_AND_WATCH_CODES = ["SW-S", "SW-T1", "SW-O", "SW-P", "SW-A1", "SW-N", "SW-D", "SW-W",
                        "SW-A2", "SW-T2", "SW-C", "SW-H"]


def test_catalogue_holds_nine_restore2_and_twelve_stop_and_watch_items_in_order():
    assert [s.code for s in CATALOGUE if s.source is Source.RESTORE2] == RESTORE2_CODES
    assert [s.code for s in CATALOGUE if s.source is Source.STOP_AND_WATCH] == \
        STOP_AND_WATCH_CODES


def test_codes_and_labels_are_unique_and_non_empty():
    codes = [s.code for s in CATALOGUE]
    labels = [s.label for s in CATALOGUE]
    assert len(set(codes)) == len(codes) == 21
    assert len(set(labels)) == len(labels)
    assert all(label.strip() for label in labels)


@pytest.mark.parametrize(("code", "label", "source"), [
    ("R2-BREATH", "New or increased breathlessness or cough", Source.RESTORE2),
    ("R2-CONCERN", "Concern from family or carers", Source.RESTORE2),
    ("R2-NOT-USUAL", "Not their usual self", Source.RESTORE2),
    ("SW-A2", "More restless, anxious or upset than normal", Source.STOP_AND_WATCH),
    ("SW-H", "Needing more help to walk, move or use the toilet", Source.STOP_AND_WATCH),
])
def test_lookup(code, label, source):
    sign = lookup(code)
    assert (sign.code, sign.label, sign.source) == (code, label, source)


@pytest.mark.parametrize("code", ["SW-A", "SW-T", "r2-pain", " R2-PAIN", "", "R2-FEVER"])
def test_lookup_unknown_code_raises_key_error(code):
    with pytest.raises(KeyError):
        lookup(code)


@pytest.mark.parametrize(("codes", "expected"), [
    ([], []),
    (["R2-PAIN", "SW-S"], []),
    (["R2-PAIN", "XX", "SW-A", "XX"], ["XX", "SW-A"]),
    (("sw-s",), ["sw-s"]),
])
def test_unknown_codes_deduplicated_in_given_order(codes, expected):
    assert unknown_codes(codes) == expected


@pytest.mark.parametrize(("codes", "full_set", "signs", "take_full_set", "prompt"), [
    ([], False, (), False, None),
    ([], True, (), False, None),
    (["R2-PAIN"], False, ("R2-PAIN",), True, PROMPT_TAKE_OBS),
    (["R2-PAIN"], True, ("R2-PAIN",), False, PROMPT_ESCALATE),
    (["SW-T2", "R2-EATING", "SW-T2"], False, ("SW-T2", "R2-EATING"), True, PROMPT_TAKE_OBS),
    (iter(["R2-CONCERN"]), True, ("R2-CONCERN",), False, PROMPT_ESCALATE),
])
def test_evaluate(codes, full_set, signs, take_full_set, prompt):
    assessment = evaluate(codes, has_full_news2_set=full_set)
    assert tuple(s.code for s in assessment.signs) == signs
    assert assessment.present is bool(signs)
    assert assessment.take_full_set is take_full_set
    assert assessment.prompt == prompt


def test_prompt_wording_from_domain_brief():
    assert PROMPT_TAKE_OBS == "Take a full set of observations and consider escalation (SBARD)."
    assert "SBARD" in PROMPT_ESCALATE


def test_restore2_mini_soft_signs_alone_still_prompt_escalation():
    # A home that takes no observations still gets an escalation prompt from soft signs.
    assert "escalation (SBARD)" in evaluate(["R2-SKIN"], has_full_news2_set=False).prompt


def test_evaluate_rejects_unknown_codes_listing_all_of_them():
    with pytest.raises(UnknownSoftSigns) as caught:
        evaluate(["R2-PAIN", "NOPE", "SW-A", "NOPE"], has_full_news2_set=False)
    assert caught.value.codes == ("NOPE", "SW-A")
