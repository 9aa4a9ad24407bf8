"""NHS number validation and keyed pseudonyms.

An NHS number is ten ASCII digits whose last digit is a modulus-11 check over the first nine
(weights 10..2; check = 11 - (sum mod 11); 11 -> 0; 10 -> never issued). Input may be grouped
3-3-4 with single spaces or single hyphens ("943 476 5919"); everything downstream sees the ten
bare digits. The number is personal data: only `pseudonymise` output may leave ingest.

Pseudonym format (version 1): ``p1_`` + the first 32 hex characters (128 bits) of
HMAC-SHA256(key, b"mandet/nhs-number/v1\\x00" + ten digits). Residents known only by a
platform's local id get ``l1_`` + 32 hex of HMAC-SHA256(key, b"mandet/local-id/v1\\x00" +
len32(platform) + platform + len32(local_id) + local_id), UTF-8, len32 = 4-byte big-endian byte
length. The distinct tags (domain separation) and length prefixes mean no NHS-number pseudonym
and no other (platform, local_id) pair can produce the same MAC input. Change the tags and the
prefix together if the scheme ever changes, so old and new pseudonyms are visibly different.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
import re

PSEUDONYM_PREFIX = "p1_"
LOCAL_PSEUDONYM_PREFIX = "l1_"
PSEUDONYM_HEX_CHARS = 32  # 128 bits
MIN_KEY_BYTES = 16  # the number space is only ~10**9: the key is the whole protection

_NHS_TAG = b"mandet/nhs-number/v1\x00"
_LOCAL_TAG = b"mandet/local-id/v1\x00"
_ALLOWED = re.compile(r"[0-9 -]*")
_GROUPED = re.compile(r"[0-9]{3}([ -])[0-9]{3}\1[0-9]{4}")
_BARE = re.compile(r"[0-9]{10}")
_NINE = re.compile(r"[0-9]{9}")
_WEIGHTS = range(10, 1, -1)


class InvalidNhsNumber(ValueError):
    """Raised with a human-readable `reason` (never containing the number itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid NHS number: {reason}")
        self.reason = reason


def check_digit(first_nine: str) -> int | None:
    """Modulus-11 check digit for nine digits; None when the result is 10 (invalid)."""
    if not _NINE.fullmatch(first_nine):
        raise ValueError("check_digit needs exactly nine digits")
    return _check(first_nine)


def _check(nine: str) -> int | None:
    total = sum(map(operator.mul, map(int, nine), _WEIGHTS))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def _digits(raw: str) -> str:
    if not isinstance(raw, str):
        raise InvalidNhsNumber(f"must be a string, got {type(raw).__name__}")
    text = raw.strip()
    if _BARE.fullmatch(text):  # the usual spelling: every check below would pass
        return text
    if not _ALLOWED.fullmatch(text):
        raise InvalidNhsNumber("may contain only digits, spaces and hyphens")
    digits = text.replace(" ", "").replace("-", "")
    if len(digits) != 10:
        raise InvalidNhsNumber(f"must be 10 digits, got {len(digits)}")
    if not (_BARE.fullmatch(text) or _GROUPED.fullmatch(text)):
        raise InvalidNhsNumber("separators must group the digits 3-3-4 with one space or hyphen")
    return digits


def normalise(raw: str) -> str:
    """Ten bare digits of a valid NHS number, or raise InvalidNhsNumber with the reason."""
    digits = _digits(raw)
    if len(set(digits)) == 1:
        raise InvalidNhsNumber("all digits the same")
    expected = _check(digits[:9])
    if expected is None:
        raise InvalidNhsNumber("check digit would be 10, so no valid number has these digits")
    if expected != int(digits[9]):
        raise InvalidNhsNumber("check digit does not match")
    return digits


def invalid_reason(raw: str) -> str | None:
    """Why `raw` is not a valid NHS number, or None if it is."""
    try:
        normalise(raw)
    except InvalidNhsNumber as error:
        return error.reason
    return None


def is_valid(raw: str) -> bool:
    return invalid_reason(raw) is None


def _mac(key: bytes, tag: bytes, message: bytes) -> str:
    if not isinstance(key, bytes | bytearray):
        raise TypeError("pseudonym key must be bytes")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    mac = keyed(bytes(key), tag).copy()
    mac.update(message)
    return mac.hexdigest()[:PSEUDONYM_HEX_CHARS]


@functools.lru_cache(maxsize=16)
def keyed(key: bytes, tag: bytes) -> hmac.HMAC:
    """HMAC-SHA256 state with ``key`` set up and ``tag`` fed, to ``copy()`` per message: the
    same MAC as ``hmac.digest(key, tag + message)``, without redoing the key's pads and the
    tag for every set of a batch (ingest calls it twice a set)."""
    return hmac.new(key, tag, hashlib.sha256)


def pseudonymise(nhs_number: str, key: bytes) -> str:
    """Stable keyed pseudonym of a valid NHS number (any accepted spelling gives the same)."""
    return PSEUDONYM_PREFIX + _mac(key, _NHS_TAG, normalise(nhs_number).encode("ascii"))


def _field(value: str, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    data = value.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def pseudonymise_local(platform: str, local_id: str, key: bytes) -> str:
    """Keyed pseudonym of a resident known only by a platform's own id (exact, case-sensitive)."""
    message = _field(platform, "platform") + _field(local_id, "local_id")
    return LOCAL_PSEUDONYM_PREFIX + _mac(key, _LOCAL_TAG, message)
