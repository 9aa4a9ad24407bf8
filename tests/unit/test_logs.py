"""JSON log lines carry the request id and event id of the work in hand."""

from __future__ import annotations

import json
import logging

from shared import logs


def render(record: logging.LogRecord) -> dict:
    return json.loads(logs.JsonFormatter().format(record))


def test_request_and_event_ids_appear_when_set():
    rt, et = logs.request_id.set("req-1"), logs.event_id.set("evt-2")
    try:
        line = render(logging.makeLogRecord({"msg": "applied %s", "args": ("x",),
                                             "levelname": "INFO", "name": "t"}))
    finally:
        logs.request_id.reset(rt)
        logs.event_id.reset(et)
    assert line["msg"] == "applied x"
    assert (line["request_id"], line["event_id"]) == ("req-1", "evt-2")


def test_extra_fields_are_kept_and_absent_ids_omitted():
    line = render(logging.makeLogRecord({"msg": "m", "levelname": "WARNING", "name": "t",
                                         "service": "ingest"}))
    assert line["service"] == "ingest" and "request_id" not in line and "event_id" not in line
