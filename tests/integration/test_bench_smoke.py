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
