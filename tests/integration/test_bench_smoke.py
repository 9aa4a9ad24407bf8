"""The benchmark harness still runs: a quick run of two baselines writes its table."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.e2e  # the harness starts PostgreSQL and the broker as the tests do


def test_quick_run_writes_json_and_markdown(tmp_path):
    assert main(["--quick", "--only", "bare-api,copy", "--out", str(tmp_path)]) == 0
    (md,) = tmp_path.glob("*-quick.md")
    (record,) = tmp_path.glob("*-quick.json")
    text = md.read_text()
    assert "| scenario | figure | baseline | ratio | target | met? |" in text
    assert "FAILED" not in text
    rows = json.loads(record.read_text())["rows"]
    assert {r["scenario"] for r in rows} >= {
        "baseline (a): bare validate endpoint, saturation",
        "baseline (b): asyncpg COPY, 1,000-row transactions"}
    assert all(r["figure"] and r["figure"] > 0 for r in rows)
    assert "bare-api" in json.loads(record.read_text())["peak_rss_bytes"]


def test_quick_rebuild_from_the_broker_runs_in_a_process_of_its_own(tmp_path):
    """``rebuild-bus`` runs ``bench.rebuild_process`` (the command's replay, split between
    forked workers) and reports every event of the published history replayed."""
    assert main(["--quick", "--only", "rebuild-bus", "--out", str(tmp_path)]) == 0
    (record,) = tmp_path.glob("*-quick.json")
    [row] = json.loads(record.read_text())["rows"]
    assert row["scenario"].startswith("rebuild command from the broker")
    details = row["details"]
    assert details["applied"] == details["published"] > 0 and details["skipped"] == 0
    assert row["figure"] > 0 and details["client_cpu_ms_per_1000"] > 0
