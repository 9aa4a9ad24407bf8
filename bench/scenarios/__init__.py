"""Scenario plug-ins: each module registers its scenarios with ``bench.core.scenario``.

Order here is the order of the table: baselines that need nothing unfinished first, then the
service scenarios, which report SKIPPED until their route exists. Scenarios run one after
another on one machine and background work (a relay or consumer backlog) can outlive its
scenario, so the query scenarios (reports, views_more) run before the write-heavy ones; the
one that builds the largest history in memory (rebuild_activity) runs last.
"""

from __future__ import annotations

import importlib
import importlib.util

MODULES = ("pure", "http_baseline", "copy", "relay", "reports", "views_more",
           "reports_freshness", "rebuild_bus", "ingest", "news2_endpoint", "freshness",
           "rebuild_activity")


def load_all() -> None:
    for name in MODULES:
        if importlib.util.find_spec(f"bench.scenarios.{name}") is not None:
            importlib.import_module(f"bench.scenarios.{name}")
