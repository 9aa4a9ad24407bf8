"""The stateless NEWS2 calculator: score a posted set, store nothing.

Scale 2 here is a what-if for a clinician checking a prescribed 88-92 % target; anyone else
asking for it is refused, because scale 2 under-scores hypoxaemia when used wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.scoring.domain import news2, softsigns, trend
from services.scoring.domain.assessment import rejection_reasons
from services.scoring.domain.news2 import ImplausibleVitals, RiskBand, Scale2Setting, Vitals
from services.scoring.domain.softsigns import UnknownSoftSigns
from services.scoring.presenters import news2_out
from services.scoring.schemas import CalculatorInput, CalculatorOut
from shared.auth import Principal, Role
from shared.outbox import utcnow
from shared.problems import Problem


def calculate(body: CalculatorInput, *, by: Principal,
              wording: Mapping[RiskBand, str]) -> CalculatorOut:
    """Score ``body``; 422 naming every implausible value or unknown soft sign."""
    scale2 = _scale2(body, by)
    vitals = Vitals(body.respiration_rate, body.spo2, body.on_oxygen, body.systolic_bp,
                    body.pulse, body.consciousness, body.temperature, body.temperature_unit)
    try:
        result = news2.score(vitals, scale2)
        signs = softsigns.evaluate(body.soft_signs, has_full_news2_set=result.total is not None)
    except (ImplausibleVitals, UnknownSoftSigns):
        raise _invalid(vitals, body.soft_signs) from None
    reasons = trend.should_flag(result, signs.present, trend_fired=False)
    return CalculatorOut(**news2_out(result, wording).model_dump(),
                         soft_signs=[s.code for s in signs.signs], soft_sign_prompt=signs.prompt,
                         claim=str(news2.compare_claim(result, body.client_total)),
                         flag_reasons=[str(r) for r in reasons])


def _scale2(body: CalculatorInput, by: Principal) -> Scale2Setting | None:
    if body.spo2_scale == 1:
        return None
    if by.role not in (Role.CLINICIAN, Role.ADMIN):
        raise Problem(403, "Forbidden", "only a clinician may score on SpO2 scale 2",
                      errors=[{"field": "spo2_scale", "value": 2,
                               "reason": "scale 2 needs a clinician's prescription"}])
    return Scale2Setting(by.sub, utcnow())


def _invalid(vitals: Vitals, codes: list[str]) -> Problem:
    return Problem(422, "Implausible observations",
                   "These values cannot be scored; check them and take them again.",
                   errors=rejection_reasons(vitals, codes))
