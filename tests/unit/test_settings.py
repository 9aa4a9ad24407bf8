"""Settings precedence and the production secret rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import load_settings

STRONG = "s" * 32


def test_service_prefix_beats_common_prefix_beats_default(monkeypatch):
    monkeypatch.setenv("MANDET_BUS", "kafka")
    monkeypatch.setenv("MANDET_RELAY_BATCH_SIZE", "100")
    monkeypatch.setenv("INGEST_RELAY_BATCH_SIZE", "200")
    ingest, reports = load_settings("ingest"), load_settings("reports")
    assert (ingest.bus, ingest.relay_batch_size) == ("kafka", 200)
    assert (reports.bus, reports.relay_batch_size) == ("kafka", 100)
    assert reports.consumer_batch_size == 500  # the default
    assert load_settings("reports", relay_batch_size=7).relay_batch_size == 7


def test_prod_with_a_secret_only_under_the_service_prefix_loads(monkeypatch):
    monkeypatch.setenv("MANDET_ENV", "prod")
    monkeypatch.setenv("REPORTS_JWT_SECRET", STRONG)
    assert load_settings("reports").jwt_secret.get_secret_value() == STRONG


@pytest.mark.parametrize("secret", ["dev-only-change-me-never-use-outside-dev",
                                    "dev-only-change-me", "", "short-secret"])
def test_prod_refuses_weak_secrets(monkeypatch, secret):
    monkeypatch.setenv("MANDET_ENV", "prod")
    monkeypatch.setenv("MANDET_JWT_SECRET", secret)
    with pytest.raises(ValidationError, match="jwt_secret must be a real secret of at least 32"):
        load_settings("reports")


def test_dev_accepts_the_placeholder():
    assert load_settings("reports", env="dev").jwt_secret.get_secret_value() == (
        "dev-only-change-me-never-use-outside-dev")
