"""The content MAC is stored: a retry after an upgrade must still match the set it repeats,
so its input format and value are fixed (expected value computed independently with OpenSSL:
printf 'mandet/set-content/v1\\x00resident=...\\x1f...' | openssl dgst -sha256 -hmac KEY)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.ingest.validation import content_hash

KEY = b"0123456789abcdef0123456789abcdef"
ROW = {"respiration_rate": "18", "spo2": "97", "on_oxygen": False, "systolic_bp": "120",
       "pulse": "77", "consciousness": "A", "temperature_c": "37.25",
       "resident": "p1_b39200524c6dc27acd2b3f560d49adf3", "site_id": "1-5868490225",
       "icb_code": "QHL", "psc_code": "SW",
       "taken_at": datetime(2026, 11, 29, 9, 30, 15, 250000, tzinfo=timezone(timedelta(hours=1))),
       "source_platform": "carehq", "platform_set_id": "set-1", "spo2_scale_claim": None,
       "soft_signs": "breathless pain", "client_news2_total": 3, "recorder": "Nurse Ödön"}


def test_content_hash_known_answer():
    assert content_hash(ROW, KEY) == "1ca28e6eb05ac510374e12068ca9e699"


def test_content_hash_depends_on_key_and_every_value():
    assert content_hash(ROW, KEY) == content_hash(dict(ROW), KEY)   # repeatable (cached key)
    assert content_hash(ROW, b"x" * 32) != content_hash(ROW, KEY)
    assert content_hash({**ROW, "pulse": "78"}, KEY) != content_hash(ROW, KEY)
