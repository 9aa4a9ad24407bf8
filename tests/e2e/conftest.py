"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest

from services.reports import rebuild


@pytest.fixture
def forks(monkeypatch) -> list[int]:
    """How many workers each split rebuild forked (``run_forked`` itself, counted)."""
    counted: list[int] = []
    real = rebuild.run_forked

    async def counting(work, args, on_note):  # noqa: ANN001, ANN202
        counted.append(len(args))
        return await real(work, args, on_note)

    monkeypatch.setattr(rebuild, "run_forked", counting)
    return counted
