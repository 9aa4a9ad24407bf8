"""Shared fixtures: real PostgreSQL and a Kafka-protocol broker, started lazily.

* ``postgres`` (session): :class:`tests.infra.postgres.PostgresServer`
  (private server, or ``TEST_DATABASE_URL``).
* ``pg_url`` (function): URL of a fresh empty database on it.
* ``broker`` (session): :class:`tests.infra.broker.Broker`
  (private tansu, or ``TEST_KAFKA_BOOTSTRAP``).

A test still running after ``TEST_STALL_SECONDS`` (600) ends the run with every stack written
out (:mod:`tests.infra.stall`).

Nothing is started unless a test requests the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.broker import Broker, start_broker
from tests.infra.postgres import PostgresServer, start_postgres
from tests.infra.stall import Watchdog, stall_seconds

_watchdog = Watchdog(stall_seconds())


def pytest_configure(config: pytest.Config) -> None:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        _watchdog.before = lambda: capture.suspend_global_capture(in_=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # noqa: ANN001, ARG001 - pytest's hook signature
    """Setup, call and teardown of every test run under the stall watchdog."""
    _watchdog.start(item.nodeid)
    try:
        yield
    finally:
        _watchdog.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """``postgresql+asyncpg://...`` URL of a fresh, empty database for this test."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = start_broker()
    try:
        yield b
    finally:
        b.stop()
