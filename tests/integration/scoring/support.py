"""A scoring runtime driven through its bus: ObservationRecorded (and ObservationSetWithdrawn)
in, API and events out."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from shared.auth import Role
from shared.bus.base import Bus, Consumer, Record
from shared.events import (
    Envelope,
    Event,
    ObservationRecorded,
    ObservationSetWithdrawn,
    decode,
    encode,
    parse,
    topics,
    wrap,
)
from shared.runtime import Runtime

SITE, ICB, PSC = "1-5868490225", "QJK", "SW"
OTHER_SITE = "1-1000000001"
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
WITHDRAWN_AT = datetime(2024, 3, 1, 13, 0, tzinfo=UTC)
NORMAL = {"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 130,
          "pulse": 70, "consciousness": "A", "temperature_c": "37.0"}  # NEWS2 0


def observation(resident: str, taken_at: datetime, *, site: str = SITE,
                observation_id: uuid.UUID | None = None, **values: object) -> ObservationRecorded:
    vitals = {**NORMAL, **values}
    for k in ("respiration_rate", "spo2", "systolic_bp", "pulse", "temperature_c"):
        if vitals.get(k) is not None:
            vitals[k] = Decimal(str(vitals[k]))
    return ObservationRecorded(
        observation_id=observation_id or uuid.uuid4(), resident=resident, site_id=site,
        icb_code=ICB, psc_code=PSC, taken_at=taken_at, received_at=taken_at,
        source_platform="test-platform", **vitals)


def withdrawal(obs: ObservationRecorded, reason: str = "entered-in-error", *,
               replaced_by: uuid.UUID | None = None,
               withdrawn_at: datetime = WITHDRAWN_AT) -> ObservationSetWithdrawn:
    """Ingest's withdrawal of ``obs``, carrying the set as recorded."""
    return ObservationSetWithdrawn(
        observation_id=obs.observation_id, resident=obs.resident, site_id=obs.site_id,
        icb_code=obs.icb_code, psc_code=obs.psc_code, taken_at=obs.taken_at,
        source_platform=obs.source_platform, withdrawn_at=withdrawn_at, reason=reason,
        replaced_by=replaced_by)


@dataclass
class Harness:
    runtime: Runtime
    bus: Bus
    client: httpx.AsyncClient
    reader: Consumer
    seen: list[Envelope] = field(default_factory=list)

    def headers(self, role: Role, sub: str = "tester", **scope: list[str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.runtime.tokens.issue(sub, role, **scope)}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.headers(Role.ADMIN)

    async def publish(self, *items: Event | Envelope) -> list[Envelope]:
        envs = [i if isinstance(i, Envelope) else wrap(i, source="/test/ingest") for i in items]
        await self.bus.publish([Record(topics.OBSERVATIONS, e.subject, encode(e)) for e in envs])
        return envs

    async def events_for(self, observation_id: uuid.UUID, count: int,
                         within: float = 10.0) -> list[Envelope]:
        """Wait until ``count`` published events name the observation; return them."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for m in await self.reader.getmany(max_records=1000, timeout=0.05):
                envelope = decode(m.value)
                parse(envelope)  # every published event honours its schema
                self.seen.append(envelope)
            found = [e for e in self.seen if e.data["observation_id"] == str(observation_id)]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(found)} events for {observation_id}, want {count}")

    async def scored(self, obs: ObservationRecorded, events: int = 1) -> dict:
        """Wait for the observation's events, then return its timeline entry."""
        await self.events_for(obs.observation_id, events)
        return await self.entry(obs)

    async def submit(self, obs: ObservationRecorded, events: int = 1) -> dict:
        """Publish the observation and return its timeline entry once its events are out."""
        await self.publish(obs)
        return await self.scored(obs, events)

    async def entry(self, obs: ObservationRecorded) -> dict:
        r = await self.client.get(f"/residents/{obs.resident}/scores", headers=self.admin)
        assert r.status_code == 200, r.text
        return next(s for s in r.json() if s["observation_id"] == str(obs.observation_id))

    def of_type(self, kind: str | None, observation_id: uuid.UUID | None = None
                ) -> list[Envelope]:
        """Events seen so far of type ``kind`` (None: any), naming the observation if given."""
        return [e for e in self.seen if kind in (None, e.type) and (
            observation_id is None or e.data["observation_id"] == str(observation_id))]
