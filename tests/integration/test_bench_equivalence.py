"""The old-vs-new checker for ingest hot-path rewrites (``bench/equivalence.py``) still runs,
finds one tree identical to itself, and does tell two trees apart when a rule's answer
differs (a copy of this tree with one rejection reason reworded)."""

from __future__ import annotations

import shutil

import pytest

from bench.equivalence import ROOT, main

pytestmark = pytest.mark.integration  # a private PostgreSQL, as the suite starts it


def test_a_tree_is_identical_to_itself_and_a_changed_rule_is_found(tmp_path, capsys):
    assert main([str(ROOT), str(ROOT)], batches=25) == 0
    assert "IDENTICAL" in capsys.readouterr().out
    changed = tmp_path / "changed"
    for part in ("services", "shared", "tests"):
        shutil.copytree(ROOT / part, changed / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    rules = changed / "services" / "ingest" / "domain" / "rules.py"
    text = rules.read_text()
    assert "not a known soft-sign code" in text
    rules.write_text(text.replace("not a known soft-sign code", "unknown soft-sign code"))
    assert main([str(ROOT), str(changed)], batches=25) == 1
    assert "DIFFERENT responses" in capsys.readouterr().out
