"""What each activity event adds to its site's quarter (``activity.counts_of``): a
hand-written table, withdrawals included."""

import uuid
from datetime import UTC, datetime

import pytest

from services.reports.activity import counts_of
from shared.events.observations import ObservationRecorded, ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn

T = datetime(2023, 1, 5, 9, tzinfo=UTC)
WHERE = {"observation_id": uuid.uuid4(), "resident": "p1_x", "site_id": "1-A",
         "icb_code": "QJK", "psc_code": "SW", "taken_at": T}
WITHDRAWN = {"withdrawn_at": T, "reason": "entered-in-error"}


def withdrawn_score(**kw) -> ScoreWithdrawn:
    return ScoreWithdrawn(**WHERE, **WITHDRAWN, **kw)


@pytest.mark.parametrize(("event", "want"), [
    (ObservationRecorded(**WHERE, received_at=T, source_platform="p"), {"observation_sets": 1}),
    (ObservationSetWithdrawn(**WHERE, **WITHDRAWN, source_platform="p"),
     {"observation_sets": -1}),
    (ScoreComputed(**WHERE, scale=1, sub_scores={}, total=6, risk="medium", red_score=True,
                   claim_mismatch=True),
     {"scored_sets": 1, "complete_sets": 1, "risk_medium": 1, "red_scores": 1,
      "claim_mismatches": 1}),
    (DeteriorationFlagged(**WHERE, flag_id=uuid.uuid4(), reasons=("risk",)), {"flags": 1}),
    (withdrawn_score(status="scored", total=6, risk="medium", red_score=True,
                     claim_mismatch=True, flag_id=uuid.uuid4()),
     {"scored_sets": -1, "complete_sets": -1, "risk_medium": -1, "red_scores": -1,
      "claim_mismatches": -1, "flags": -1}),
    (withdrawn_score(status="scored", total=None, risk=None),   # incomplete, no flag
     {"scored_sets": -1, "complete_sets": 0, "red_scores": 0, "claim_mismatches": 0}),
    (withdrawn_score(status="scored", total=0, risk="low"),
     {"scored_sets": -1, "complete_sets": -1, "risk_low": -1, "red_scores": 0,
      "claim_mismatches": 0}),
    (withdrawn_score(status="rejected"), {}),   # a rejected score counted nothing
], ids=["recorded", "set-withdrawn", "scored", "flagged", "score-and-flag-withdrawn",
        "incomplete-score-withdrawn", "low-score-withdrawn", "rejected-score-withdrawn"])
def test_what_each_event_adds(event, want):
    assert counts_of(event) == want
