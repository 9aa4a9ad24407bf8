"""Scoring HTTP routes: translate requests to handler calls, nothing more."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from services.scoring import calculator, flags, residents
from services.scoring.domain.softsigns import CATALOGUE
from services.scoring.presenters import wording_from
from services.scoring.schemas import (
    SITE_ID,
    CalculatorInput,
    CalculatorOut,
    FlagOut,
    ScoreOut,
    SiteCode,
    SoftSignOut,
    Spo2ScaleInput,
    Spo2ScaleOut,
    Text,
)
from shared.api import ANY_ROLE
from shared.auth import Principal, Role, require
from shared.runtime import Runtime

TIMELINE_READERS = (Role.PLATFORM, Role.CLINICIAN, Role.PSC, Role.DASHBOARD)
FLAG_HANDLERS = (Role.PLATFORM, Role.CLINICIAN)
Pseudonym = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
SiteId = Annotated[str, Path(min_length=1, max_length=32, pattern=SITE_ID)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["scoring"])
    db = runtime.db
    wording = wording_from(getattr(runtime.settings, "escalation_wording", {}))

    @api.get("/residents/{pseudonym}/scores", response_model=list[ScoreOut])
    async def score_timeline(pseudonym: Pseudonym, limit: Limit = 100, *,
                             principal: Annotated[Principal, Depends(require(*TIMELINE_READERS))]
                             ) -> list[ScoreOut]:
        """A resident's NEWS2 timeline, newest taken first (rejected and withdrawn readings
        included; a withdrawn one says when, why and what replaced it)."""
        async with db.session() as session:
            return await residents.timeline(session, pseudonym, by=principal, limit=limit,
                                            wording=wording)

    @api.get("/residents/{pseudonym}/spo2-scale", response_model=Spo2ScaleOut)
    async def get_scale(pseudonym: Pseudonym, *,
                        principal: Annotated[Principal, Depends(require(*TIMELINE_READERS))]
                        ) -> Spo2ScaleOut:
        """The resident's SpO2 scale setting in force now (scale 1 unless a clinician set 2)."""
        async with db.session() as session:
            await residents.resident_in_scope(session, pseudonym, by=principal)
            return await residents.current_scale(session, pseudonym)

    @api.put("/residents/{pseudonym}/spo2-scale", response_model=Spo2ScaleOut)
    async def set_scale(pseudonym: Pseudonym, body: Spo2ScaleInput, *,
                        principal: Annotated[Principal, Depends(require(Role.CLINICIAN))]
                        ) -> Spo2ScaleOut:
        """Prescribe SpO2 scale 2 (88-92 % target) for a resident: who, when and why; before
        their first reading, with the home caring for them (``site_id``)."""
        async with db.transaction() as session:
            return await residents.set_scale(session, pseudonym, body.scale, by=principal,
                                             reason=body.reason, site_id=body.site_id)

    @api.delete("/residents/{pseudonym}/spo2-scale", response_model=Spo2ScaleOut)
    async def clear_scale(pseudonym: Pseudonym, *,
                          principal: Annotated[Principal, Depends(require(Role.CLINICIAN))],
                          reason: Annotated[Text | None, Query()] = None,
                          site_id: Annotated[SiteCode | None, Query()] = None) -> Spo2ScaleOut:
        """Revert a resident to SpO2 scale 1 (recorded with who, when and why)."""
        async with db.transaction() as session:
            return await residents.set_scale(session, pseudonym, 1, by=principal, reason=reason,
                                             site_id=site_id)

    @api.get("/sites/{site_id}/flags", response_model=list[FlagOut])
    async def site_flags(site_id: SiteId, limit: Limit = 100, *,
                         principal: Annotated[Principal, Depends(require(*FLAG_HANDLERS))]
                         ) -> list[FlagOut]:
        """The site's open (unacknowledged, not withdrawn) deterioration flags, newest taken
        first."""
        async with db.session() as session:
            return await flags.open_flags(session, site_id, by=principal, limit=limit)

    @api.get("/flags/{flag_id}", response_model=FlagOut)
    async def flag(flag_id: uuid.UUID, *,
                   principal: Annotated[Principal, Depends(require(*FLAG_HANDLERS))]
                   ) -> FlagOut:
        """One flag, open, acknowledged or withdrawn (``withdrawal`` says when and why)."""
        async with db.session() as session:
            return await flags.one(session, flag_id, by=principal)

    @api.post("/flags/{flag_id}/acknowledge", response_model=FlagOut)
    async def acknowledge(flag_id: uuid.UUID, *,
                          principal: Annotated[Principal, Depends(require(*FLAG_HANDLERS))]
                          ) -> FlagOut:
        """Acknowledge a flag, recording who and when; 409 if it was withdrawn with its
        observation set."""
        async with db.transaction() as session:
            return await flags.acknowledge(session, flag_id, by=principal)

    @api.post("/news2/calculate", response_model=CalculatorOut)
    async def calculate(body: CalculatorInput,
                        principal: Annotated[Principal, Depends(require(*ANY_ROLE))]
                        ) -> CalculatorOut:
        """Score a set of observations without storing anything."""
        return calculator.calculate(body, by=principal, wording=wording)

    @api.get("/soft-signs", response_model=list[SoftSignOut])
    async def soft_signs(_: Annotated[Principal, Depends(require(*ANY_ROLE))]
                         ) -> list[SoftSignOut]:
        """The soft-sign catalogue (RESTORE2, and Stop and Watch under our own codes)."""
        return [SoftSignOut(code=s.code, label=s.label, source=str(s.source)) for s in CATALOGUE]

    return api
