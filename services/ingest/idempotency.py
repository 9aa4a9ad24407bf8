"""``Idempotency-Key``: the first answer under a key is kept and replayed to retries.

The key is claimed *first* inside the request's transaction (``INSERT ... ON CONFLICT DO
NOTHING``). On PostgreSQL a concurrent request with the same key blocks on that insert until
the first commits, then finds the key taken and replays the stored answer; on SQLite writers
are serialised anyway. A request that fails (4xx problem, crash) rolls its claim back with
everything else, so only successful answers are remembered. The same key with a different
request body is refused with 409. Keys are scoped per caller (token ``sub``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import IDEMPOTENCY
from services.ingest.observations import dialect_of
from shared.dialect import insert_ignore
from shared.outbox import utcnow
from shared.problems import Problem

_TAG = b"mandet/request/v1\x00"
KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # printable ASCII, no spaces


def request_hash(key: bytes, payload: Any) -> str:
    """Keyed MAC of the canonical request (keyed: bodies contain NHS numbers)."""
    doc = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hmac.new(key, _TAG + doc.encode(), hashlib.sha256).hexdigest()


async def claim(session: AsyncSession | AsyncConnection, *, caller: str, key: str, request: str
                ) -> tuple[int, Any] | None:
    """Claim ``key`` for this request; or the stored (status, body) if it was answered before."""
    dialect = dialect_of(session)
    stmt = insert_ignore(IDEMPOTENCY, dialect).values(
        caller=caller, key=key, request_hash=request, status=0, response="",
        created_at=utcnow()).returning(IDEMPOTENCY.c.key)
    if (await session.execute(stmt)).first() is not None:
        return None
    row = (await session.execute(select(IDEMPOTENCY).where(
        IDEMPOTENCY.c.caller == caller, IDEMPOTENCY.c.key == key))).one()
    if row.request_hash != request:
        raise Problem(409, "Conflict", "this Idempotency-Key was used with a different request",
                      errors=[{"field": "Idempotency-Key", "value": key,
                               "reason": "reused with different content"}])
    return row.status, json.loads(row.response)


async def remember(session: AsyncSession | AsyncConnection, *, caller: str, key: str, status: int,
                   body: Any) -> None:
    """Store the answer for the claimed key (same transaction as the effect)."""
    await session.execute(update(IDEMPOTENCY).where(
        IDEMPOTENCY.c.caller == caller, IDEMPOTENCY.c.key == key).values(
        status=status, response=json.dumps(body, default=str)))
