"""Shared rejections as OperationOutcome issues: status -> issue code, field -> element."""

from __future__ import annotations

import pytest

from services.ingest.fhir_outcome import error_issues, issue_code


@pytest.mark.parametrize("status, code", [
    (400, "structure"), (401, "login"), (403, "forbidden"), (404, "not-found"),
    (405, "not-supported"), (409, "conflict"), (413, "too-costly"), (415, "not-supported"),
    (422, "invalid"), (429, "throttled"), (418, "processing"),
    (500, "exception"), (502, "exception"), (503, "exception"),
])
def test_status_to_issue_code(status, code):
    assert issue_code(status) == code


def test_auth_rejections_name_the_authorization_header():
    assert error_issues(401, "a bearer token is required") == [
        {"severity": "error", "code": "login", "diagnostics": "a bearer token is required",
         "expression": ["http.Authorization"], "location": ["http.Authorization"]}]
    assert error_issues(403, "role psc may not use this route") == [
        {"severity": "error", "code": "forbidden",
         "diagnostics": "role psc may not use this route",
         "expression": ["http.Authorization"], "location": ["http.Authorization"]}]


def test_other_rejections_without_fields_name_no_element():
    assert error_issues(413, "the body is larger than 1048576 bytes") == [
        {"severity": "error", "code": "too-costly",
         "diagnostics": "the body is larger than 1048576 bytes"}]
    assert error_issues(500, "The server failed to handle this request; it has been logged.") == [
        {"severity": "error", "code": "exception",
         "diagnostics": "The server failed to handle this request; it has been logged."}]


def test_field_errors_become_one_issue_each_and_never_echo_values():
    errors = [
        {"field": "header.Idempotency-Key", "value": "has space", "reason": "bad pattern"},
        {"field": "query.since", "reason": "not a date"},
        {"field": "Idempotency-Key", "value": "k1", "reason": "reused with different content"},
        {"field": "items.0.pulse", "value": 999, "reason": "too high"},
    ]
    assert error_issues(422, "One or more fields failed validation.", errors) == [
        {"severity": "error", "code": "invalid", "diagnostics": "Idempotency-Key: bad pattern",
         "expression": ["http.Idempotency-Key"], "location": ["http.Idempotency-Key"]},
        {"severity": "error", "code": "invalid", "diagnostics": "since: not a date",
         "expression": ["http.since"], "location": ["http.since"]},
        {"severity": "error", "code": "invalid",
         "diagnostics": "Idempotency-Key: reused with different content",
         "expression": ["http.Idempotency-Key"], "location": ["http.Idempotency-Key"]},
        {"severity": "error", "code": "invalid", "diagnostics": "items.0.pulse: too high"},
    ]
