"""Shared fixtures: real PostgreSQL and a Kafka-protocol broker, started lazily.

* ``postgres`` (session): :class:`tests.infra.postgres.PostgresServer`
  (private server, or ``TEST_DATABASE_URL``).
* ``pg_url`` (function): URL of a fresh empty database on it.
* ``broker`` (session): :class:`tests.infra.broker.Broker`
  (private tansu, or ``TEST_KAFKA_BOOTSTRAP``).

Nothing is started unless a test requests the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.broker import Broker, start_broker
from tests.infra.postgres import PostgresServer, start_postgres


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
