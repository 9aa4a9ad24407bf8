"""The results table (Markdown) and the JSON record of one run."""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.core import Row, fmt

RESULTS = Path(__file__).resolve().parent / "results"
HEADER = ("| scenario | figure | baseline | ratio | target | met? |\n"
          "|---|---|---|---|---|---|")


def verdict(row: Row) -> str:
    if row.skipped:
        return "SKIPPED"
    if row.met is None:
        return "-"
    return "yes" if row.met else "**NO: target missed**"


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    for row in rows:
        if row.skipped:
            word = "FAILED" if row.skipped.startswith("error") else "SKIPPED"
            lines.append(f"| {row.scenario} | {row.skipped} | "
                         f"{_baseline(row)} | - | {row.target or '-'} | {word} |")
            continue
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        lines.append(f"| {row.scenario} | {fmt(row.figure)} {row.unit} | {_baseline(row)} | "
                     f"{ratio} | {row.target or '-'} | {verdict(row)} |")
    return "\n".join(lines)


def _baseline(row: Row) -> str:
    if row.baseline is None:
        return row.baseline_label or "-"
    return f"{fmt(row.baseline)} ({row.baseline_label})"


def memory_table(peaks: dict[str, int]) -> str:
    if not peaks:
        return ""
    lines = ["| process | peak RSS |", "|---|---|"]
    lines += [f"| {name} | {rss / 2**20:,.0f} MiB |" for name, rss in sorted(peaks.items())]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_avg_1_5_15": [round(x, 2) for x in load],
            "python": platform.python_version(), "platform": platform.platform()}


def notes(rows: list[Row]) -> str:
    return "\n".join(f"- {r.scenario}: {r.note}" for r in rows if r.note)


def cpu_lines(rows: list[Row]) -> str:
    """Where the CPU went during each scenario (seconds, busiest processes first)."""
    out = []
    for r in rows:
        cpu = r.details.get("cpu_s")
        if cpu:
            top = sorted(cpu.items(), key=lambda kv: -kv[1])[:6]
            out.append(f"- {r.scenario}: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    return "\n".join(out)


def write(rows: list[Row], peaks: dict[str, int], *, quick: bool, command: str,
          started: datetime, load_before: list[float], out_dir: Path = RESULTS) -> Path:
    """Write ``<date>.json`` and ``<date>.md``; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y-%m-%dT%H%MZ") + ("-quick" if quick else "")
    env = machine() | {"load_avg_before": load_before}
    record = {"started": started.isoformat(), "finished": datetime.now(UTC).isoformat(),
              "command": command, "quick": quick, "machine": env,
              "rows": [r.as_dict() for r in rows],
              "peak_rss_bytes": peaks}
    (out_dir / f"{stamp}.json").write_text(json.dumps(_strict(record), indent=2, default=str))
    md = render(rows, peaks, command=command, started=started, env=env)
    path = out_dir / f"{stamp}.md"
    path.write_text(md)
    return path


def render(rows: list[Row], peaks: dict[str, int], *, command: str, started: datetime,
           env: dict[str, Any]) -> str:
    parts = [f"Run `{command}` at {started:%Y-%m-%d %H:%M} UTC on {env['cpus']} CPUs; load "
             f"average before {env['load_avg_before']}, after {env['load_avg_1_5_15']} "
             "(1/5/15 min). Figures and baselines come from the same run.", "",
             table(rows)]
    if notes(rows):
        parts += ["", "Notes:", notes(rows)]
    if cpu_lines(rows):
        parts += ["", "CPU seconds by process during each scenario (the machine has "
                  f"{env['cpus']} CPUs; the harness process is the load generator):",
                  cpu_lines(rows)]
    if peaks:
        parts += ["", "Peak RSS of each process started for the run:", "", memory_table(peaks)]
    return "\n".join(parts) + "\n"


def _strict(value: Any) -> Any:
    """Standard JSON: NaN becomes null and an infinite latency the string "inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else "inf"
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value
