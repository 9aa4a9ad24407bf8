"""Scoring HTTP routes (scores, flags and the calculator arrive with issue #5)."""

from __future__ import annotations

from fastapi import APIRouter

from shared.runtime import Runtime


def router(runtime: Runtime) -> APIRouter:
    return APIRouter(tags=["scoring"])
