"""FHIR R4 routes: ``POST /fhir/Observation`` and ``POST /fhir`` (batch/transaction/collection).

Bodies are read with ``parse_float=Decimal`` and answered as ``application/fhir+json``:
a Bundle response with one ``response`` per entry, or an ``OperationOutcome`` whose issues name
the element (``expression`` and ``location``). A ``transaction`` is all or nothing: any error
fails the whole Bundle and nothing is stored. Every other 4xx/5xx on these routes, including
those raised before the route body runs (no or invalid token 401 with ``WWW-Authenticate``,
wrong role 403, a malformed ``Idempotency-Key`` header 422, a crash 500), is an OperationOutcome
too: ``bootstrap`` registers ``fhir_outcome.render_rejection`` with the shared error handlers
for paths under ``/fhir``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from services.ingest import fhir_outcome as oo
from services.ingest.api import IdempotencyKey
from services.ingest.fhir import Mapped, Source, map_entries, to_set
from services.ingest.fhir_models import Bundle, Organization, Patient
from services.ingest.intake import IngestRuntime
from services.ingest.observations import Outcome
from shared.auth import Principal, Role, require
from shared.problems import Problem

FHIR_JSON = oo.FHIR_JSON


def router(runtime: IngestRuntime) -> APIRouter:
    api = APIRouter(prefix="/fhir", tags=["fhir"])
    site_extension = runtime.settings.fhir_site_extension

    @api.post("/Observation", response_class=JSONResponse, status_code=201)
    async def post_observation(request: Request,
                               principal: Annotated[Principal, Depends(require(Role.PLATFORM))],
                               idempotency_key: IdempotencyKey = None) -> Response:
        """One vital-sign Observation; becomes a one-parameter observation set."""
        try:
            doc = await _json(request)
            if not isinstance(doc, dict) or doc.get("resourceType") != "Observation":
                raise oo.Failure(400, [oo.issue("error", "structure", "resourceType must be "
                                                "Observation", ["Observation.resourceType"])])
            mapped = map_entries([(0, "Observation", doc)], Source(principal, site_extension,
                                                                    {}, {}))
            status, body = await runtime.intake(
                principal, [to_set(g) for g in mapped.groups], partial(oo.single, mapped),
                idempotency_key=idempotency_key, request=doc)
        except oo.Failure as failure:
            return _fhir(failure.status, oo.outcome(failure.issues))
        except Problem as problem:  # e.g. an Idempotency-Key reused for another body: 409
            return _rejected(problem)
        headers = {"Location": body.pop("_location")} if "_location" in body else None
        return _fhir(status, body, headers)

    @api.post("", response_class=JSONResponse)
    async def post_bundle(request: Request,
                          principal: Annotated[Principal, Depends(require(Role.PLATFORM))],
                          idempotency_key: IdempotencyKey = None) -> Response:
        """A Bundle of Observations; those of one resident at one time become one set."""
        try:
            doc = await _json(request)
            bundle = _bundle(doc)
            mapped = map_entries(*_entries(bundle, principal, site_extension))
            kinds = [e.resource.get("resourceType") for e in bundle.entry]
            respond = partial(_respond, bundle.type, mapped, kinds)
            status, body = await runtime.intake(
                principal, [to_set(g) for g in mapped.groups], respond,
                idempotency_key=idempotency_key, request=doc)
        except oo.Failure as failure:
            return _fhir(failure.status, oo.outcome(failure.issues))
        except Problem as problem:
            return _rejected(problem)
        return _fhir(status, body)

    return api


def _respond(kind: str, mapped: Mapped, kinds: list[Any], outcomes: list[Outcome]
             ) -> tuple[int, Any]:
    body = oo.bundle_response(kind, mapped, kinds, outcomes)
    if kind == "transaction":
        issues = oo.all_errors(body)
        if issues:
            raise oo.Failure(422, issues)  # rolls back: a transaction is all or nothing
    return 200, body


def _rejected(problem: Problem) -> Response:
    issues = oo.error_issues(problem.status, str(problem), problem.errors)
    return _fhir(problem.status, oo.outcome(issues), problem.headers)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise oo.Failure(400, [oo.issue("error", "structure", f"body is not JSON: {exc}",
                                        [])]) from exc


def _bundle(doc: Any) -> Bundle:
    try:
        bundle = Bundle.model_validate(doc)
    except ValidationError as exc:
        issues = [oo.issue("error", "structure", err["msg"],
                           ["Bundle" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                               for p in err["loc"])])
                  for err in exc.errors(include_url=False)]
        raise oo.Failure(400, issues) from exc
    _creates_only(bundle)
    return bundle


def _creates_only(bundle: Bundle) -> None:
    """An Observation entry asking to update, patch or delete is refused, naming it, rather
    than stored as a new reading (nothing of the Bundle is recorded). Patient and Organization
    entries are only read to resolve references, so their method (often a conditional PUT)
    does not matter."""
    issues = [oo.issue("error", "not-supported",
                       f"request.method {e.request.method}: Observations can only be created "
                       "(POST); send a correction as a new Observation",
                       [f"Bundle.entry[{i}].request.method"])
              for i, e in enumerate(bundle.entry)
              if e.request is not None and e.request.method != "POST"
              and e.resource.get("resourceType") == "Observation"]
    if issues:
        raise oo.Failure(422, issues)


def _entries(bundle: Bundle, principal: Principal, site_extension: str
             ) -> tuple[list[tuple[int, str, dict[str, Any]]], Source]:
    patients: dict[str, Patient] = {}
    orgs: dict[str, Organization] = {}
    for entry in bundle.entry:
        kind = entry.resource.get("resourceType")
        model, index = {"Patient": (Patient, patients), "Organization": (Organization, orgs)
                        }.get(kind, (None, None))  # type: ignore[arg-type]
        if model is None or index is None:
            continue
        try:
            resource = model.model_validate(entry.resource)
        except ValidationError:
            continue  # its Observations then fail to resolve, naming their subject/performer
        for key in (entry.fullUrl, f"{kind}/{resource.id}" if resource.id else None):
            if key:
                index[key] = resource  # type: ignore[assignment]
    resources = [(i, f"Bundle.entry[{i}].resource", e.resource)
                 for i, e in enumerate(bundle.entry)]
    return resources, Source(principal, site_extension, patients, orgs)


def _fhir(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """``body`` as ``JSONResponse`` would write it, values it cannot hold as their ``str``;
    encoded once (not dumped, re-read and dumped again)."""
    content = json.dumps(body, default=str, ensure_ascii=False, allow_nan=False,
                         separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=FHIR_JSON, headers=headers)
