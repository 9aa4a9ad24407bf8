"""Trend rule and escalation flags, against hand-written tables."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.news2 import RiskBand, Vitals, score
from services.scoring.domain.trend import (
    FlagReason,
    ScoredObservation,
    TrendReason,
    assess_trend,
    previous_score,
    should_flag,
)

LOW, LOW_MED, MED, HIGH = RiskBand.LOW, RiskBand.LOW_MEDIUM, RiskBand.MEDIUM, RiskBand.HIGH
NEW_AT = datetime(2024, 1, 10, 8, 0, tzinfo=UTC)
BAND, TOTAL = TrendReason.BAND_ROSE, TrendReason.TOTAL_ROSE


def obs(hours_before: float, total: int | None, risk: RiskBand | None) -> ScoredObservation:
    return ScoredObservation(NEW_AT - timedelta(hours=hours_before), total, risk)


@pytest.mark.parametrize(("history", "new", "reasons"), [
    pytest.param([], obs(0, 5, MED), (), id="no history"),
    pytest.param([obs(4, 1, LOW)], obs(0, 2, LOW), (), id="rise of 1, same band"),
    pytest.param([obs(4, 1, LOW)], obs(0, 3, LOW), (TOTAL,), id="rise of 2 within 24h"),
    pytest.param([obs(25, 1, LOW)], obs(0, 3, LOW), (), id="rise of 2 after 25h"),
    pytest.param([obs(24, 1, LOW)], obs(0, 3, LOW), (TOTAL,), id="exactly 24h counts"),
    pytest.param([obs(24 + 1 / 3600, 1, LOW)], obs(0, 3, LOW), (), id="24h and 1s does not"),
    pytest.param([obs(24 * 30, 2, LOW)], obs(0, 3, LOW_MED), (BAND,), id="band rise, any age"),
    pytest.param([obs(2, 0, LOW)], obs(0, 5, MED), (BAND, TOTAL), id="both"),
    pytest.param([obs(1, 6, MED)], obs(0, 3, LOW_MED), (), id="fall"),
    pytest.param([obs(1, 7, HIGH)], obs(0, 9, HIGH), (TOTAL,), id="rise within high"),
    pytest.param([obs(1, 3, LOW_MED)], obs(0, 4, LOW), (), id="band falls, rise of 1"),
    pytest.param([obs(1, 3, LOW_MED)], obs(0, 5, MED), (BAND, TOTAL), id="low-medium to medium"),
    pytest.param([obs(1, 4, LOW), obs(10, 0, LOW)], obs(0, 5, MED), (BAND,),
                 id="latest by taken-at, listed first"),
    pytest.param([obs(10, 0, LOW), obs(1, 4, LOW)], obs(0, 5, MED), (BAND,),
                 id="latest by taken-at, listed last"),
    pytest.param([obs(-4, 8, HIGH), obs(10, 0, LOW)], obs(5, 3, LOW_MED), (BAND, TOTAL),
                 id="late arrival compared with the reading before it, not the newest"),
    pytest.param([obs(1, None, None), obs(3, 1, LOW)], obs(0, 3, LOW), (TOTAL,),
                 id="incomplete previous skipped"),
    pytest.param([obs(1, None, None)], obs(0, 9, HIGH), (), id="only incomplete history"),
    pytest.param([obs(3, 0, LOW)], obs(0, None, None), (), id="new incomplete"),
    pytest.param([obs(0, 5, MED), obs(2, 1, LOW)], obs(0, 5, MED), (BAND, TOTAL),
                 id="same instant (redelivery) is not previous"),
    pytest.param([obs(1, 5, MED), obs(1, 1, LOW)], obs(0, 5, MED), (BAND, TOTAL),
                 id="tie at one instant uses the lower score"),
    pytest.param([obs(-1, 0, LOW)], obs(0, 9, HIGH), (), id="only later readings"),
])
def test_trend_rule(history, new, reasons):
    assessment = assess_trend(history, new)
    assert assessment.reasons == reasons
    assert assessment.fired is bool(reasons)


def test_previous_score_is_latest_complete_before_new():
    history = [obs(-1, 9, HIGH), obs(1, None, None), obs(2, 4, LOW), obs(6, 0, LOW)]
    assert previous_score(history, obs(0, 5, MED)) == obs(2, 4, LOW)


def _naive_previous(history, new):
    """Rule 1 spelt out: the latest complete score before ``new``, lowest (band, total) on a tie."""
    earlier = [o for o in history if o.risk is not None and o.taken_at < new.taken_at]
    if not earlier:
        return None
    latest = max(o.taken_at for o in earlier)
    return min((o for o in earlier if o.taken_at == latest), key=lambda o: (o.risk.rank, o.total))


_READING = st.builds(lambda h, t: obs(h, t, None if t is None else score_band(t)),
                     st.integers(-3, 3), st.one_of(st.none(), st.integers(0, 20)))


def score_band(total: int) -> RiskBand:
    return HIGH if total >= 7 else MED if total >= 5 else LOW_MED if total == 3 else LOW


@given(st.lists(_READING, max_size=12), _READING)
def test_previous_score_matches_rule_one_spelt_out(history, new):
    assert previous_score(history, new) == _naive_previous(history, new)


def test_history_may_be_a_generator():
    assert assess_trend((o for o in [obs(2, 0, LOW)]), obs(0, 5, MED)).previous == obs(2, 0, LOW)


@pytest.mark.parametrize(("taken_at", "total", "risk"), [
    (datetime(2024, 1, 10, 8), 1, LOW),  # naive
    (NEW_AT, 1, None),
    (NEW_AT, None, LOW),
])
def test_scored_observation_rejects_inconsistent_values(taken_at, total, risk):
    with pytest.raises(ValueError):
        ScoredObservation(taken_at, total, risk)


def test_scored_observation_from_result():
    result = score(Vitals(respiration_rate=25, spo2=97, on_oxygen=False, systolic_bp=120,
                          pulse=70, consciousness="A", temperature=37))
    assert ScoredObservation.of(NEW_AT, result) == ScoredObservation(NEW_AT, 3, LOW_MED)


NORMAL = dict(respiration_rate=16, spo2=97, on_oxygen=False, systolic_bp=120, pulse=70,
              consciousness="A", temperature=37)


@pytest.mark.parametrize(("changes", "soft", "trend", "reasons"), [
    pytest.param({}, False, False, [], id="low 0"),
    pytest.param({"respiration_rate": 21, "spo2": 93}, False, False, [], id="low 4"),
    pytest.param({"respiration_rate": 25}, False, False, [FlagReason.RISK_BAND],
                 id="low-medium"),
    pytest.param({"respiration_rate": 21, "spo2": 92, "pulse": 91}, True, True,
                 [FlagReason.RISK_BAND, FlagReason.SOFT_SIGNS, FlagReason.TREND], id="all"),
    pytest.param({}, True, False, [FlagReason.SOFT_SIGNS], id="soft signs only"),
    pytest.param({}, False, True, [FlagReason.TREND], id="trend only"),
    pytest.param({"respiration_rate": 25, "pulse": None}, False, False,
                 [FlagReason.INCOMPLETE_AT_LEAST_LOW_MEDIUM], id="incomplete with red score"),
    pytest.param({"respiration_rate": 21, "spo2": 92, "pulse": None, "temperature": 38.5},
                 False, False, [FlagReason.INCOMPLETE_AT_LEAST_LOW_MEDIUM],
                 id="incomplete known sum 5"),
    pytest.param({"pulse": None}, False, False, [], id="incomplete known sum 0"),
    pytest.param({"pulse": None}, True, False, [FlagReason.SOFT_SIGNS],
                 id="incomplete with soft signs"),
])
def test_should_flag(changes, soft, trend, reasons):
    result = score(Vitals(**{**NORMAL, **changes}))
    assert should_flag(result, soft_signs_present=soft, trend_fired=trend) == reasons
