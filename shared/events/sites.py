"""Site register events, published by adoption, keyed by site id."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from shared.events import topics
from shared.events.envelope import Event


class SiteFacts(Event):
    """The register's view of a site, carried whole so consumers keep their own copy."""

    KEY_FIELD: ClassVar[str] = "site_id"
    TOPIC: ClassVar[str] = topics.SITES

    site_id: str
    revision: int
    name: str
    setting_type: str
    icb_code: str
    psc_code: str
    region: str
    beds: int | None = None
    nursing: bool | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    successor_id: str | None = None


class SiteRegistered(SiteFacts):
    TYPE: ClassVar[str] = "SiteRegistered"


class SiteUpdated(SiteFacts):
    TYPE: ClassVar[str] = "SiteUpdated"


class SiteClosed(SiteFacts):
    TYPE: ClassVar[str] = "SiteClosed"
