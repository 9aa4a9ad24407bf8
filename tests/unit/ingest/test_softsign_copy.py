"""Ingest keeps its own copy of the soft-sign codes; it must match scoring's catalogue."""

from __future__ import annotations

import pytest

from services.ingest.domain.softsign_codes import SOFT_SIGN_CODES


def test_copy_matches_the_scoring_catalogue():
    softsigns = pytest.importorskip("services.scoring.domain.softsigns")
    assert {sign.code for sign in softsigns.CATALOGUE} == SOFT_SIGN_CODES
