"""Soft signs of deterioration, held as data, and the prompt they raise.

``CATALOGUE`` holds the RESTORE2 soft signs (DOMAIN.md) and the twelve items of the INTERACT
"Stop and Watch" mnemonic (S-T-O-P-A-N-D-W-A-T-C-H). Stop and Watch wording is licensed, so the
labels here are our own paraphrases and the codes are ours: one per letter, with the repeated
letters numbered in order (``SW-T1``/``SW-T2``, ``SW-A1``/``SW-A2``). Codes are stable and
case-sensitive; never renumber or reuse one, add new codes instead.

Any soft sign present prompts staff to consider escalation with SBARD. RESTORE2 mini works from
soft signs alone, so the prompt never waits for observations; when no full NEWS2 set has been
taken, it also asks for one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    RESTORE2 = "RESTORE2"
    STOP_AND_WATCH = "Stop and Watch"


@dataclass(frozen=True, slots=True)
class SoftSign:
    code: str
    label: str
    source: Source


_R, _SW = Source.RESTORE2, Source.STOP_AND_WATCH
CATALOGUE: tuple[SoftSign, ...] = (
    SoftSign("R2-BREATH", "New or increased breathlessness or cough", _R),
    SoftSign("R2-EATING", "Eating or drinking less", _R),
    SoftSign("R2-CONFUSION",
             "New or worse confusion, drowsiness, agitation, distress or withdrawal", _R),
    SoftSign("R2-SKIN", "Pale, cold or mottled skin", _R),
    SoftSign("R2-MOBILITY", "Reduced mobility, unsteadiness or falls", _R),
    SoftSign("R2-BOWEL-URINE", "Bowel or urine changes", _R),
    SoftSign("R2-PAIN", "New pain", _R),
    SoftSign("R2-NOT-USUAL", "Not their usual self", _R),
    SoftSign("R2-CONCERN", "Concern from family or carers", _R),
    # Stop and Watch, letter by letter; paraphrased, not the licensed wording.
    SoftSign("SW-S", "Not like their normal self", _SW),
    SoftSign("SW-T1", "Speaking or joining in less", _SW),
    SoftSign("SW-O", "Needing more help than before with daily care", _SW),
    SoftSign("SW-P", "Pain that is new or getting worse", _SW),
    SoftSign("SW-A1", "Eating less than normal", _SW),
    SoftSign("SW-N", "Bowels not opened for three days, or loose stools", _SW),
    SoftSign("SW-D", "Taking fewer drinks", _SW),
    SoftSign("SW-W", "Weight gone up or down", _SW),
    SoftSign("SW-A2", "More restless, anxious or upset than normal", _SW),
    SoftSign("SW-T2", "More tired, weak, muddled or sleepy", _SW),
    SoftSign("SW-C", "Skin colour or condition has changed", _SW),
    SoftSign("SW-H", "Needing more help to walk, move or use the toilet", _SW),
)
_BY_CODE = {sign.code: sign for sign in CATALOGUE}

PROMPT_TAKE_OBS = "Take a full set of observations and consider escalation (SBARD)."
PROMPT_ESCALATE = "Consider escalation (SBARD), including the NEWS2 score."


class UnknownSoftSigns(ValueError):
    def __init__(self, codes: list[str]) -> None:
        super().__init__("unknown soft-sign codes: " + ", ".join(codes))
        self.codes = tuple(codes)


@dataclass(frozen=True, slots=True)
class SoftSignAssessment:
    signs: tuple[SoftSign, ...]  # de-duplicated, in the order first given
    take_full_set: bool  # soft signs present and no full NEWS2 set yet
    prompt: str | None  # None when no soft sign is present

    @property
    def present(self) -> bool:
        return bool(self.signs)


def lookup(code: str) -> SoftSign:
    """The catalogue entry for ``code``; raises ``KeyError`` for an unknown code."""
    return _BY_CODE[code]


def unknown_codes(codes: Iterable[str]) -> list[str]:
    """Codes not in the catalogue, de-duplicated, in the order first given."""
    return list(dict.fromkeys(c for c in codes if c not in _BY_CODE))


_NONE_PRESENT = SoftSignAssessment((), False, None)


def evaluate(codes: Iterable[str], has_full_news2_set: bool) -> SoftSignAssessment:
    """Assess recorded soft signs; raises ``UnknownSoftSigns`` rather than drop a code."""
    if codes == ():  # most readings record none: skip the de-duplication and lookups
        return _NONE_PRESENT
    given = list(dict.fromkeys(codes))
    if unknown := unknown_codes(given):
        raise UnknownSoftSigns(unknown)
    signs = tuple(_BY_CODE[c] for c in given)
    if not signs:
        return SoftSignAssessment((), False, None)
    if has_full_news2_set:
        return SoftSignAssessment(signs, False, PROMPT_ESCALATE)
    return SoftSignAssessment(signs, True, PROMPT_TAKE_OBS)
