"""Stage transitions between consecutive quarter ends (pure).

A site counts when it is open at both quarter ends; a site with no record in force is at
stage 0. "Up" and "down" compare stage numbers only; a tool change at the same stage is
"same".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Transitions:
    up: int
    down: int
    same: int
    moves: dict[tuple[int, int], int]  # (from stage, to stage) -> sites, only actual moves


def summarise(pairs: Iterable[tuple[int, int]]) -> Transitions:
    """Count (stage at previous quarter end, stage at this quarter end) pairs."""
    up = down = same = 0
    moves: dict[tuple[int, int], int] = {}
    for before, after in pairs:
        if after == before:
            same += 1
            continue
        if after > before:
            up += 1
        else:
            down += 1
        moves[(before, after)] = moves.get((before, after), 0) + 1
    return Transitions(up, down, same, dict(sorted(moves.items())))
