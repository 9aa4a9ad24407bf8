"""The two QART charts, drawn from view rows (SVG or PNG bytes; no I/O beyond rendering).

1. Stage shares stacked per area for one quarter (share of the area's denominator at 0-7).
2. Percentage at >= 3, >= 5 and = 7 across quarters, with each ambition as a dashed line.
matplotlib is CPU-bound: callers run these in a worker thread, off the event loop.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from services.reports.domain.adoption import AdoptionRow

STAGE_COLOURS = ("#d9d9d9", "#fde0dd", "#fcc5c0", "#fa9fb5", "#c6dbef", "#6baed6", "#2171b5",
                 "#08306b")
LINES = (("ge3", "decision", "at stage >= 3", "#fa9fb5"),
         ("ge5", "adoption", "at stage >= 5", "#6baed6"),
         ("eq7", "sustained", "at stage 7", "#08306b"))


def _figure(width: float, height: float):  # noqa: ANN202 - a matplotlib Figure
    from matplotlib.figure import Figure  # no pyplot: no global state, thread-safe enough

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _bytes(fig, fmt: str) -> bytes:  # noqa: ANN001
    out = io.BytesIO()
    fig.savefig(out, format=fmt, metadata=None if fmt == "png" else {"Date": None})
    return out.getvalue()


def stage_shares(rows: Sequence[AdoptionRow], fmt: str) -> bytes:
    """Horizontal stacked bars, one per area: the share of its open sites at each stage."""
    fig = _figure(9, 1.2 + 0.4 * max(len(rows), 1))
    ax = fig.add_subplot()
    labels = [f"{r.code} (n={r.denominator:,})" for r in rows]
    left = [0.0] * len(rows)
    for stage in range(8):
        shares = [100 * r.stages[stage] / r.denominator if r.denominator else 0 for r in rows]
        ax.barh(labels, shares, left=left, color=STAGE_COLOURS[stage], label=f"stage {stage}")
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of open sites at quarter end")
    ax.invert_yaxis()
    title = rows[0].quarter if rows else "no data"
    ax.set_title(f"Stage of adoption by area, {title}")
    ax.legend(ncols=8, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / max(len(rows), 1)),
              fontsize="small", frameon=False)
    return _bytes(fig, fmt)


def measures_over_time(rows: Sequence[AdoptionRow], fmt: str) -> bytes:
    """Lines for >= 3, >= 5 and = 7 across quarters, and each ambition as a dashed line."""
    fig = _figure(9, 4.5)
    ax = fig.add_subplot()
    quarters = [r.quarter for r in rows]
    for measure, ambition, label, colour in LINES:
        values = [float(r.measures[measure].percent) if r.measures[measure].percent is not None
                  else float("nan") for r in rows]
        ax.plot(quarters, values, marker="o", color=colour, label=label)
        if rows:
            target = float(rows[-1].ambitions[ambition][0])
            ax.axhline(target, color=colour, linestyle="--", linewidth=1,
                       label=f"ambition {target:g} %")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of open sites")
    area = f"{rows[0].level} {rows[0].code}, {rows[0].programme}" if rows else "no data"
    ax.set_title(f"Headline measures: {area}")
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize="small", ncols=2, loc="lower right")
    return _bytes(fig, fmt)
