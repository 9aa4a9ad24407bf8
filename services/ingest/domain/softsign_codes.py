"""Soft-sign codes ingest accepts: a copy of the scoring catalogue's codes, held as data.

Ingest never imports another service, so it keeps its own copy of the *codes* (not the labels)
from ``services/scoring/domain/softsigns.py`` (RESTORE2 ``R2-*`` and our own Stop and Watch
``SW-*`` codes). Codes are stable and case-sensitive and only ever added: when the catalogue
gains a code, add it here too (a contract test may compare the two lists).
"""

from __future__ import annotations

RESTORE2 = ("R2-BREATH", "R2-EATING", "R2-CONFUSION", "R2-SKIN", "R2-MOBILITY",
            "R2-BOWEL-URINE", "R2-PAIN", "R2-NOT-USUAL", "R2-CONCERN")
STOP_AND_WATCH = ("SW-S", "SW-T1", "SW-O", "SW-P", "SW-A1", "SW-N", "SW-D", "SW-W", "SW-A2",
                  "SW-T2", "SW-C", "SW-H")
SOFT_SIGN_CODES: frozenset[str] = frozenset(RESTORE2 + STOP_AND_WATCH)
