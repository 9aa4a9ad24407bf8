"""FHIR answers: OperationOutcome issues naming elements, and batch/transaction responses.

Each issue carries ``expression`` (FHIRPath of the element) and the deprecated ``location``
with the same path, for clients that only read the older one. Values of NHS numbers are never
repeated back (the domain errors already withhold them).

:func:`render_rejection` writes the shared error handlers' rejections (401, 403, a bad header,
a crash, ...) as OperationOutcomes on the FHIR routes; ``bootstrap`` hands it to
``shared.api.service_app``. An HTTP header or parameter is named the FHIR way, ``http.`` + its
name (``http.Authorization``, ``http.Idempotency-Key``). No value is echoed, and a 5xx says only
that the failure was logged: never a stack trace.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from services.ingest.fhir import Group, Mapped
from services.ingest.fhir_read import Problem
from services.ingest.observations import Outcome
from shared.problems import Rejection

FHIR_JSON = "application/fhir+json"
STATUS_TEXT = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request",
               403: "403 Forbidden", 409: "409 Conflict", 422: "422 Unprocessable Entity"}
ISSUE_CODE = {400: "structure", 403: "forbidden", 409: "conflict", 422: "invalid"}
# HTTP status of a rejection -> FHIR IssueType (http://hl7.org/fhir/issue-type); 5xx: exception.
_STATUS_ISSUE = {**ISSUE_CODE, 401: "login", 404: "not-found", 405: "not-supported",
                 406: "not-supported", 408: "timeout", 411: "required", 412: "conflict",
                 413: "too-costly", 415: "not-supported", 429: "throttled"}
_PARAMETER_SOURCES = ("header", "query", "path", "cookie")  # RequestValidationError locations
_HEADERS = {"authorization", "idempotency-key"}  # fields named bare, e.g. by idempotency.claim
# A native set field -> the group's element paths that gave it.
_FIELD_PATH = {"temperature_c": "temperature", "local_id": "nhs_number",
               "temperature_unit": "temperature"}


class Failure(Exception):
    """Answer with an OperationOutcome (rolls back the intake transaction if raised in it)."""

    def __init__(self, status: int, issues: list[dict[str, Any]]) -> None:
        super().__init__(f"{status}: {len(issues)} issues")
        self.status, self.issues = status, issues


def issue(severity: str, code: str, diagnostics: str, paths: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if paths:
        out["expression"] = paths
        out["location"] = paths
    return out


def outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}


def issue_code(status: int) -> str:
    """The FHIR issue code for an HTTP status."""
    return "exception" if status >= 500 else _STATUS_ISSUE.get(status, "processing")


def error_issues(status: int, reason: str, errors: list[dict[str, Any]] | None = None
                 ) -> list[dict[str, Any]]:
    """A shared-style rejection (``{"field", "reason"}`` errors) as error issues; without
    errors one issue carrying ``reason``. 401 and 403 name the ``Authorization`` header."""
    code = issue_code(status)
    if errors:
        return [_field_issue(code, err) for err in errors]
    paths = ["http.Authorization"] if status in (401, 403) else []
    return [issue("error", code, reason, paths)]


def _field_issue(code: str, err: dict[str, Any]) -> dict[str, Any]:
    name = str(err.get("field") or "body")
    source, _, param = name.partition(".")
    if source in _PARAMETER_SOURCES and param:
        name, paths = param, [f"http.{param}"]
    else:
        paths = [f"http.{name}"] if name.lower() in _HEADERS else []
    return issue("error", code, f"{name}: {err.get('reason')}", paths)


def render_rejection(request: Request, rejection: Rejection) -> JSONResponse:
    """``shared.problems`` renderer for the FHIR routes: same status and headers (e.g.
    ``WWW-Authenticate``), an OperationOutcome body."""
    issues = error_issues(rejection.status, rejection.detail or rejection.title,
                          rejection.errors)
    return JSONResponse(outcome(issues), status_code=rejection.status, media_type=FHIR_JSON,
                        headers=rejection.headers)


def problem_issue(p: Problem, severity: str = "error", code: str = "invalid") -> dict[str, Any]:
    text = p.reason if p.value is None else f"{p.reason} (got {p.value})"
    return issue(severity, code, text, [p.expression])


def set_issues(group: Group, result: Outcome, severity: str = "error") -> list[dict[str, Any]]:
    """A rejected set's errors (an unmatched one's warnings), each pointed at the elements
    its field came from."""
    out = []
    for err in result.errors or []:
        name = str(err.get("field", "body")).split(".")[0]
        paths = err.get("expression") or group.paths.get(_FIELD_PATH.get(name, name)) or \
            sorted({p for ps in group.paths.values() for p in ps})
        value = err.get("value")
        text = f"{name}: {err['reason']}" + ("" if value is None else f" (got {value})")
        code = ISSUE_CODE.get(result.status, "invalid") if severity == "error" else "not-found"
        out.append(issue(severity, code, text, paths))
    return out


def single(mapped: Mapped, outcomes: list[Outcome]) -> tuple[int, Any]:
    """POST /fhir/Observation: 201 (or 200 on a retry) with Location, else a Failure."""
    if 0 in mapped.errors:
        raise Failure(422, [problem_issue(p) for p in mapped.errors[0]])
    notes = [problem_issue(p, "warning", "informational") for p in mapped.notes.get(0, [])]
    if not outcomes:
        status = 200 if mapped.notes.get(0) and "status" in mapped.notes[0][0].expression else 422
        if status == 422:
            raise Failure(422, [{**n, "severity": "error", "code": "invalid"} for n in notes])
        return 200, outcome(notes)
    (result,) = outcomes
    if result.kind == "rejected":
        raise Failure(result.status, set_issues(mapped.groups[0], result))
    if result.kind == "unmatched":
        return 200, outcome(set_issues(mapped.groups[0], result, "warning") + notes)
    text = f"{result.kind}: observation set {result.id}"
    body = outcome([issue("information", "informational", text, [])] + notes)
    return result.status, {**body, "_location": f"observation-sets/{result.id}"}


def bundle_response(kind: str, mapped: Mapped, kinds: list[Any],
                    outcomes: list[Outcome]) -> dict[str, Any]:
    """One ``response`` per entry, in entry order.

    Each entry is built once, by the first that applies: its set's outcome, else its errors,
    else its notes, else its kind (a Patient or Organization read for references, or a
    resource type that is not accepted).
    """
    entries: list[dict[str, Any] | None] = [None] * len(kinds)
    for group, result in zip(mapped.groups, outcomes, strict=True):
        location = f"observation-sets/{result.id}"  # one set, seven entries: named once
        for index in group.entries:
            entries[index] = _grouped(group, result, mapped.notes.get(index, []), location)
    for index, problems in mapped.errors.items():
        if entries[index] is None:
            entries[index] = _entry(422, [problem_issue(p) for p in problems])
    for index, problems in mapped.notes.items():
        if entries[index] is None:
            entries[index] = _entry(200, [problem_issue(p, "warning", "informational")
                                          for p in problems] or None)
    kind_out = "transaction-response" if kind == "transaction" else "batch-response"
    return {"resourceType": "Bundle", "type": kind_out,
            "entry": [_other(k) if e is None else e for e, k in zip(entries, kinds, strict=True)]}


def _grouped(group: Group, result: Outcome, notes: list[Problem], location: str
             ) -> dict[str, Any]:
    warnings = [problem_issue(p, "warning", "informational") for p in notes]
    if result.kind == "rejected":
        return _entry(result.status, set_issues(group, result) + warnings)
    if result.kind == "unmatched":
        return _entry(200, set_issues(group, result, "warning") + warnings)
    entry = _entry(result.status, warnings or None)
    entry["response"]["location"] = location
    return entry


def _other(kind: Any) -> dict[str, Any]:
    if kind in ("Patient", "Organization"):
        return _entry(200, [issue("information", "informational",
                                  f"{kind} read for references only; not stored", [])])
    return _entry(422, [issue("error", "not-supported",
                              f"resource type {kind} is not accepted here", [])])


def _entry(status: int, issues: list[dict[str, Any]] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"status": STATUS_TEXT.get(status, str(status))}
    if issues:
        response["outcome"] = outcome(issues)
    return {"response": response}


def all_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every error issue of a response Bundle (a transaction fails if there is any)."""
    return [i for e in body["entry"] for i in
            e["response"].get("outcome", {}).get("issue", []) if i["severity"] == "error"]
