import pytest

from services.ingest.domain.nhs_number import (
    InvalidNhsNumber,
    check_digit,
    invalid_reason,
    is_valid,
    normalise,
    pseudonymise,
    pseudonymise_local,
)

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"

# Check digits worked by hand (weights 10..2 on the first nine digits):
# 943476591: 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 90+36+24+28+42+30+20+27+2 = 299;
#            299 mod 11 = 2 (11*27 = 297); 11 - 2 = 9          -> 9434765919
# 943476587: 90+36+24+28+42+30+20+8*3+7*2 = 270+24+14 = 308;
#            308 mod 11 = 0 (11*28); 11 - 0 = 11 -> 0           -> 9434765870
# 401023213: 4*10+0*9+1*8+0*7+2*6+3*5+2*4+1*3+3*2 = 40+8+12+15+8+3+6 = 92;
#            92 mod 11 = 4 (88); 11 - 4 = 7                     -> 4010232137
# 943476596: 297 + 6*2 = 309; 309 mod 11 = 1; 11 - 1 = 10      -> no valid number
# dddddddddd: sum = 54*d = 55*d - d == -d (mod 11), so the check is d: every
#             all-same number passes modulus 11 and must be rejected separately.


@pytest.mark.parametrize(
    ("first_nine", "expected"),
    [("943476591", 9), ("943476587", 0), ("401023213", 7), ("943476596", None)],
)
def test_check_digit(first_nine, expected):
    assert check_digit(first_nine) == expected


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("9434765919", "9434765919"),
        ("9434765870", "9434765870"),
        ("4010232137", "4010232137"),
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        ("  943 476 5870\n", "9434765870"),
    ],
)
def test_valid_numbers_normalise(raw, digits):
    assert normalise(raw) == digits
    assert is_valid(raw)
    assert invalid_reason(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("9434765918", "check digit does not match"),
        ("9434765871", "check digit does not match"),
        ("4010232138", "check digit does not match"),
        ("9434765965", "check digit would be 10, so no valid number has these digits"),
        ("0000000000", "all digits the same"),
        ("4444444444", "all digits the same"),
        ("1111111111", "all digits the same"),
        ("943476591", "must be 10 digits, got 9"),
        ("94347659190", "must be 10 digits, got 11"),
        ("", "must be 10 digits, got 0"),
        ("943 476 591", "must be 10 digits, got 9"),
        ("943.476.5919", "may contain only digits, spaces and hyphens"),
        ("943476591O", "may contain only digits, spaces and hyphens"),
        ("９４３４７６５９１９", "may contain only digits, spaces and hyphens"),
        ("943 476-5919", "separators must group the digits 3-3-4 with one space or hyphen"),
        ("9434 76 5919", "separators must group the digits 3-3-4 with one space or hyphen"),
        ("943  476 5919", "separators must group the digits 3-3-4 with one space or hyphen"),
        ("9-4-3-4-7-6-5-9-1-9", "separators must group the digits 3-3-4 with one space or hyphen"),
    ],
)
def test_invalid_numbers_give_reason(raw, reason):
    assert invalid_reason(raw) == reason
    assert not is_valid(raw)
    with pytest.raises(InvalidNhsNumber) as caught:
        normalise(raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_non_string_rejected():
    assert invalid_reason(9434765919) == "must be a string, got int"


def test_error_message_does_not_leak_number():
    with pytest.raises(InvalidNhsNumber) as caught:
        normalise("9434765918")
    assert "9434765918" not in str(caught.value)


# Expected values computed independently with OpenSSL, e.g.
#   printf 'mandet/nhs-number/v1\x009434765919' \
#     | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
# and truncated to 32 hex characters.
@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [
        ("9434765919", KEY, "p1_b39200524c6dc27acd2b3f560d49adf3"),
        ("943 476 5919", KEY, "p1_b39200524c6dc27acd2b3f560d49adf3"),
        ("943-476-5919", KEY, "p1_b39200524c6dc27acd2b3f560d49adf3"),
        ("9434765870", KEY, "p1_aa56d64590f26eae1723e41237d965f7"),
        ("9434765919", OTHER_KEY, "p1_c6375e86c35c28013970535e3eb33a2b"),
    ],
)
def test_pseudonymise(raw, key, expected):
    assert pseudonymise(raw, key) == expected


def test_pseudonymise_rejects_invalid_number():
    with pytest.raises(InvalidNhsNumber, match="check digit does not match"):
        pseudonymise("9434765918", KEY)


@pytest.mark.parametrize(("key", "error"), [(b"short", ValueError), ("a" * 32, TypeError)])
def test_pseudonymise_rejects_weak_or_wrong_key(key, error):
    with pytest.raises(error):
        pseudonymise("9434765919", key)


# printf 'mandet/local-id/v1\x00\x00\x00\x00\x06carehq\x00\x00\x00\x05R-123' \
#   | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
def test_pseudonymise_local():
    assert pseudonymise_local("carehq", "R-123", KEY) == "l1_4ca17535bf5c77566a7fa412684f1e42"


def test_local_pseudonyms_are_domain_separated():
    # Shifting characters between platform and local id must not collide (length prefixes).
    assert pseudonymise_local("carehq", "R-123", KEY) != pseudonymise_local("careh", "qR-123", KEY)
    # A local id that happens to be an NHS number is still a different pseudonym.
    local = pseudonymise_local("carehq", "9434765919", KEY)
    assert local[3:] != pseudonymise("9434765919", KEY)[3:]


@pytest.mark.parametrize(("platform", "local_id"), [("", "R-1"), ("carehq", ""), (None, "R-1")])
def test_pseudonymise_local_requires_both_parts(platform, local_id):
    with pytest.raises(ValueError):
        pseudonymise_local(platform, local_id, KEY)
