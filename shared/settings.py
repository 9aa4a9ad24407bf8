"""Typed settings, one class per service, validated once at start-up.

Sources, highest first: explicit arguments, ``<SERVICE>_X`` (e.g. ``INGEST_DATABASE_URL``),
``MANDET_X`` (every service), the default. Defaults give the embedded mode (SQLite files
under ``./data``, the in-process bus, dev secrets). Outside ``env=dev`` a placeholder, empty or
short (< 32 characters) secret is refused, so production cannot start with the dev key.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEV_PLACEHOLDER = "dev-only-change-me-never-use-outside-dev"  # noqa: S105 - a placeholder, refused outside dev
MIN_SECRET_CHARS = 32


class CommonSettings(BaseSettings):
    """Settings every service has; read from ``MANDET_*`` then the service's own prefix."""

    model_config = SettingsConfigDict(env_prefix="MANDET_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("data")
    database_url: str | None = None
    bus: Literal["memory", "kafka"] = "memory"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_enable_idempotence: bool = True
    kafka_partitions: int = Field(default=6, ge=1, le=1024)
    kafka_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    kafka_replication_factor: int = Field(default=1, ge=1, le=7)
    kafka_session_timeout_ms: int = Field(default=6_000, ge=1_000, le=300_000)
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=0, le=30_000)
    jwt_secret: SecretStr = SecretStr(DEV_PLACEHOLDER)
    jwt_issuer: str = "mandet"
    log_level: str = "INFO"
    run_relay: bool = True
    run_consumers: bool = True
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=0.05, gt=0, le=60)
    relay_max_attempts: int = Field(default=10, ge=1, le=1000)
    outbox_retention_hours: float = Field(default=168.0, ge=0, le=24 * 366)
    inbox_retention_hours: float = Field(default=336.0, ge=0, le=24 * 3660)  # shared.inbox
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    max_body_bytes: int = Field(default=10_000_000, ge=1_000, le=1_000_000_000)  # HTTP, 413
    consumer_max_attempts: int = Field(default=5, ge=1, le=1000)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        common = EnvSettingsSource(settings_cls, env_prefix="MANDET_")
        return (init_settings, env_settings, common, dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _refuse_weak_secrets_outside_dev(self) -> CommonSettings:
        if self.env != "dev":
            for name, value in self._secrets().items():
                secret = value.get_secret_value()
                if secret == DEV_PLACEHOLDER or len(secret) < MIN_SECRET_CHARS:
                    raise ValueError(f"{name} must be a real secret of at least "
                                     f"{MIN_SECRET_CHARS} characters when env={self.env}")
        return self

    def _secrets(self) -> dict[str, SecretStr]:
        return {
            name: value
            for name, value in self.__dict__.items()
            if isinstance(value, SecretStr)
        }

    def database_url_for(self, service: str) -> str:
        """The service's database; embedded default is one SQLite file per service."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / f'{service}.db'}"


class IngestSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")
    pseudonym_key: SecretStr = SecretStr(DEV_PLACEHOLDER)
    max_future_minutes: int = Field(default=5, ge=0, le=120)
    max_age_days: int = Field(default=30, ge=1, le=3650)
    fhir_site_extension: str = "https://fhir.mandet.example/StructureDefinition/site-id"
    site_cache_seconds: float = Field(default=1.0, ge=0, le=60)


class AdoptionSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ADOPTION_", extra="ignore")
    load_reference_data: bool = True
    # The 728 shipped sample homes (Devon and Somerset, 2021), loaded into an empty register.
    # None = only in the embedded default (SQLite, no database_url); a deployment opts in.
    load_care_homes: bool | None = None
    max_upload_bytes: int = Field(default=5_000_000, ge=1_000, le=100_000_000)
    max_upload_rows: int = Field(default=20_000, ge=1, le=1_000_000)
    # An XLSX upload is a zip: refused if its parts would expand past this many bytes in all.
    max_xlsx_uncompressed_bytes: int = Field(default=50_000_000, ge=100_000, le=2_000_000_000)


class ScoringSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")
    # The area's escalation wording, band -> text, e.g. SCORING_ESCALATION_WORDING=
    # '{"high": "Call 999 ..."}' (JSON: pydantic-settings parses dict fields as JSON). Bands
    # left out keep the default wording; the band logic itself is fixed.
    escalation_wording: dict[Literal["low", "low-medium", "medium", "high"], str] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _wording_is_text(self) -> ScoringSettings:
        for band, text in self.escalation_wording.items():
            if not text.strip() or "\x00" in text:
                raise ValueError(f"escalation_wording[{band!r}] must be non-empty text")
        return self


class AmbitionTargets(BaseModel):
    """QART ambitions in percent: >= 3 (decision), >= 5 (adoption), = 7 (sustained)."""

    model_config = ConfigDict(extra="forbid")
    decision: Decimal = Field(default=Decimal(95), ge=0, le=100, allow_inf_nan=False)
    adoption: Decimal = Field(default=Decimal(85), ge=0, le=100, allow_inf_nan=False)
    sustained: Decimal = Field(default=Decimal(40), ge=0, le=100, allow_inf_nan=False)


class ReportsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_", extra="ignore")
    # The earliest quarter the views materialise (later stages still see earlier records).
    first_quarter: str = Field(default="2021/22 Q1", pattern=r"^[0-9]{4}/[0-9]{2} Q[1-4]$")
    # Per programme code (JSON in the environment); programmes not listed get the defaults.
    ambitions: dict[str, AmbitionTargets] = Field(default_factory=dict)


SERVICE_SETTINGS: dict[str, type[CommonSettings]] = {
    "ingest": IngestSettings,
    "adoption": AdoptionSettings,
    "scoring": ScoringSettings,
    "reports": ReportsSettings,
}


def load_settings(service: str, **overrides: object) -> CommonSettings:
    """Service settings: arguments beat ``<SERVICE>_X`` beat ``MANDET_X`` beat the default."""
    return SERVICE_SETTINGS[service](**overrides)
