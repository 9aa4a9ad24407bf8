"""Typed settings, one class per service, validated at start-up.

Defaults give the embedded mode (SQLite files under ``./data``, the in-process bus, dev
secrets). Outside ``MANDET_ENV=dev`` a placeholder secret is refused, so a production
deployment cannot start with the development signing key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PLACEHOLDER = "dev-only-change-me"  # noqa: S105 - a placeholder, refused outside dev


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
    jwt_secret: SecretStr = SecretStr(DEV_PLACEHOLDER)
    jwt_issuer: str = "mandet"
    log_level: str = "INFO"
    run_relay: bool = True
    run_consumers: bool = True
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=0.05, gt=0, le=60)
    relay_max_attempts: int = Field(default=10, ge=1, le=1000)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    consumer_max_attempts: int = Field(default=5, ge=1, le=1000)

    @model_validator(mode="after")
    def _refuse_placeholders_outside_dev(self) -> CommonSettings:
        if self.env != "dev":
            for name, value in self._secrets().items():
                if value.get_secret_value() == DEV_PLACEHOLDER or not value.get_secret_value():
                    raise ValueError(f"{name} must be set to a real secret when env={self.env}")
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


class AdoptionSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ADOPTION_", extra="ignore")
    load_reference_data: bool = True
    load_care_homes: bool = True  # the 728 shipped homes, when the register is empty
    max_upload_bytes: int = Field(default=5_000_000, ge=1_000, le=100_000_000)
    max_upload_rows: int = Field(default=20_000, ge=1, le=1_000_000)


class ScoringSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")


class ReportsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_", extra="ignore")


SERVICE_SETTINGS: dict[str, type[CommonSettings]] = {
    "ingest": IngestSettings,
    "adoption": AdoptionSettings,
    "scoring": ScoringSettings,
    "reports": ReportsSettings,
}


def load_settings(service: str, **overrides: object) -> CommonSettings:
    """Service settings: ``<SERVICE>_X`` beats ``MANDET_X`` beats the default."""
    common = CommonSettings().model_dump()
    cls = SERVICE_SETTINGS[service]
    own = {k: v for k, v in cls().model_dump(exclude_unset=True).items()}
    return cls.model_validate({**common, **own, **overrides})
