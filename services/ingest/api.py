"""Ingest HTTP routes (native JSON): translate requests to intake calls, nothing more."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from services.ingest import observations
from services.ingest.idempotency import KEY_PATTERN
from services.ingest.intake import IngestRuntime
from services.ingest.models import KnownSite
from services.ingest.observations import Outcome
from services.ingest.schemas import (
    BatchIn,
    BatchOut,
    ObservationSetIn,
    ObservationSetOut,
    PseudonymOut,
    RecordedOut,
    ResidentIn,
)
from services.ingest.validation import WITHHELD, Rejected
from shared.auth import BEARER_DOC, Principal, Role, caller, require
from shared.problems import Problem

Body = TypeVar("Body")
WRITERS = (Role.PLATFORM,)
READERS = (Role.PLATFORM, Role.CLINICIAN, Role.PSC)
PSEUDONYM_READERS = (Role.PLATFORM, Role.CLINICIAN)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", pattern=KEY_PATTERN)]
_ITEM = TypeAdapter(ObservationSetIn)
_BATCH = TypeAdapter(BatchIn)
_KEY = TypeAdapter(Annotated[str, StringConstraints(pattern=KEY_PATTERN)])
_ITEMS = TypeAdapter(list[ObservationSetIn])


def _doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI entry of a write route that reads its own request: bearer auth, the
    optional Idempotency-Key header and a JSON ``model`` body, as the declared form says."""
    return {**BEARER_DOC,
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "pattern": KEY_PATTERN}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": model.model_json_schema(
                    ref_template="#/components/schemas/{model}")}}}}


def router(runtime: IngestRuntime) -> APIRouter:
    api = APIRouter(tags=["observations"])

    @api.post("/observation-sets", response_model=RecordedOut, status_code=201,
              responses={200: {"description": "a retry: the original result and id"}},
              openapi_extra=_doc(ObservationSetIn))
    async def post_set(request: Request) -> Any:
        """Record one observation set; 201 when new, 200 with the original id on a retry."""
        # The hottest route reads its own request: FastAPI's dependency solving was a quarter
        # of its CPU. Same checks, order and errors as the declared form (auth first, then
        # one 422 naming every bad header and body field).
        principal = caller(request, *WRITERS)
        body, idempotency_key = _read(request, await request.body(), _ITEM)
        if idempotency_key is None:  # shares a transaction with concurrent requests
            status, out = _single([await runtime.group_commit.submit(principal, body)])
        else:
            status, out = await runtime.intake(
                principal, [body], _single, idempotency_key=idempotency_key,
                request=body.model_dump(mode="json"))
        return _json(status, out)

    @api.post("/observation-sets/batch", response_model=BatchOut,
              openapi_extra=_doc(BatchIn))
    async def post_batch(request: Request) -> Any:
        """Record up to 1,000 sets; each item is accepted, a duplicate, or rejected on its own."""
        # Reads its own request like post_set, so the token is checked before the body is
        # (FastAPI parses a declared body first: a malformed one without a token got 422).
        principal = caller(request, *WRITERS)
        body, idempotency_key = _read(request, await request.body(), _BATCH)
        items = _parse_all(body.items)
        _, out = await runtime.intake(principal, items, _batch, idempotency_key=idempotency_key,
                                      request=body.items)
        return _json(200, out)

    @api.get("/observation-sets/{set_id}", response_model=ObservationSetOut)
    async def get_set(set_id: uuid.UUID,
                      principal: Annotated[Principal, Depends(require(*READERS))]) -> Any:
        """One stored set (pseudonym only), if its site is in the caller's scope."""
        async with runtime.db.session() as session:
            found = await observations.get_set(session, set_id)
        principal.require_site(found["site_id"], found["icb_code"], found["psc_code"])
        return found

    @api.delete("/observation-sets/{set_id}", response_model=ObservationSetOut)
    async def withdraw_set(set_id: uuid.UUID,
                           principal: Annotated[Principal, Depends(require(*WRITERS))]) -> Any:
        """Withdraw a set entered in error: it stays readable, marked withdrawn, and its
        score, flag and counts are taken back downstream. Only the platform that recorded
        it may; a repeat answers the same (a set is withdrawn once)."""
        return await runtime.withdraw(principal, set_id)

    @api.post("/residents/pseudonym", response_model=PseudonymOut)
    async def pseudonym(body: ResidentIn, principal: Annotated[
            Principal, Depends(require(*PSEUDONYM_READERS))]) -> PseudonymOut:
        """The pseudonym scoring and reports know a resident by, for a caller whose scope
        holds the home caring for them: a clinician needs it to set a resident's SpO2 scale
        before their first reading. Nothing is stored or logged; the NHS number is never
        echoed."""
        try:
            found = await runtime.pseudonym_of(principal, body)
        except Rejected as exc:
            raise Problem(exc.status, {403: "Forbidden"}.get(exc.status, "Resident is not valid"),
                          "No pseudonym was given.", errors=exc.errors) from None
        return PseudonymOut(pseudonym=found, site_id=body.site_id)

    @api.get("/sites/{site_id}")
    async def known_site(
        site_id: str, principal: Annotated[Principal, Depends(require(Role.PLATFORM))]
    ) -> dict:
        """Whether ingest knows a site yet (its copy follows the register's events)."""
        async with runtime.db.session() as session:
            site = await session.get(KnownSite, site_id)
        if site is None:
            raise Problem(404, "Not Found", f"site {site_id} is not known to ingest")
        principal.require_site(site.site_id, site.icb_code, site.psc_code)
        return site.model_dump(mode="json")

    return api


def _read(request: Request, raw: bytes, adapter: TypeAdapter[Body]) -> tuple[Body, str | None]:
    """The body and Idempotency-Key of a write POST, validated as FastAPI would."""
    errors: list[dict[str, Any]] = []
    key = request.headers.get("idempotency-key")
    if key is not None:
        try:
            key = _KEY.validate_python(key)
        except ValidationError as exc:
            errors += _located(exc, ("header", "Idempotency-Key"))
    try:
        body = adapter.validate_python(_json_body(request, raw))
    except ValidationError as exc:
        errors += _located(exc, ("body",)) if raw else [
            {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
    if errors:
        raise RequestValidationError(errors)
    return body, key


def _json_body(request: Request, raw: bytes) -> Any:
    """The parsed body: JSON only when the Content-Type says so (application/json or +json,
    as FastAPI's strict content type; the error says so plainly)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw:
        return raw
    if not (kind == "application/json" or kind.endswith("+json")):
        raise RequestValidationError([{"type": "content_type", "loc": ("body",),
                                       "msg": "the body must be JSON, sent with "
                                              "Content-Type: application/json"}])
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                       "msg": "JSON decode error", "input": {},
                                       "ctx": {"error": exc.msg}}]) from exc


def _located(exc: ValidationError, prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors(include_url=False)]


def _single(outcomes: list[Outcome]) -> tuple[int, Any]:
    (one,) = outcomes
    if one.kind == "rejected":
        title = {403: "Forbidden", 409: "Conflict"}.get(one.status, "Observation set is not valid")
        raise Problem(one.status, title, "The observation set was not recorded.",
                      errors=one.errors)
    return one.status, {"id": str(one.id), "outcome": one.kind}


def _batch(outcomes: list[Outcome]) -> tuple[int, Any]:
    """The ``BatchOut`` document, built directly (``exclude_none``: no null id or errors)."""
    results = [_result(i, o) for i, o in enumerate(outcomes)]
    kinds = [o.kind for o in outcomes]
    return 200, {"accepted": kinds.count("accepted"), "duplicates": kinds.count("duplicate"),
                 "rejected": kinds.count("rejected"), "results": results}


def _result(index: int, one: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "outcome": one.kind}
    if one.id is not None:
        out["id"] = str(one.id)
    out["status"] = one.status
    if one.errors is not None:
        out["errors"] = one.errors
    return out


def _json(status: int, body: Any) -> Response:
    # The documents are built to their response models already: skip re-validation.
    return Response(json.dumps(body, default=str, separators=(",", ":")).encode(),
                    status_code=status, media_type="application/json")


def _parse_all(raws: list[dict[str, Any]]) -> list[ObservationSetIn | Rejected]:
    try:  # one validator call for the whole list; item by item only to report errors
        return list(_ITEMS.validate_python(raws))
    except ValidationError:
        return [_parse(raw) for raw in raws]


def _parse(raw: dict[str, Any]) -> ObservationSetIn | Rejected:
    try:
        return _ITEM.validate_python(raw)
    except ValidationError as exc:
        return Rejected(422, edge_errors(exc))


def edge_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic errors as {field, value, reason}; never echoes an NHS number."""
    out = []
    for err in exc.errors(include_url=False):
        name = prefix + ".".join(str(p) for p in err["loc"])
        item: dict[str, Any] = {"field": name or "body", "reason": err["msg"]}
        value = err.get("input")
        if "nhs_number" in name:
            item["value"] = WITHHELD
        elif isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200:
            item["value"] = value
        out.append(item)
    return out
