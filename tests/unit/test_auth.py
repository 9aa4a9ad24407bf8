"""Tokens and scope rules (pure; the HTTP 401/403 mapping is tested through the apps)."""

from __future__ import annotations

import jwt
import pytest

from shared.auth import Principal, Role, TokenService
from shared.problems import Problem

SECRET = "unit-test-secret-0123456789-abcdefghij"


def test_issued_token_round_trips_role_and_scope():
    tokens = TokenService(SECRET)
    p = tokens.verify(tokens.issue("psc-sw", Role.PSC, pscs=["SW"], icbs=["QJK"]))
    assert p == Principal("psc-sw", Role.PSC, frozenset(), frozenset({"QJK"}), frozenset({"SW"}))


@pytest.mark.parametrize("mutate, reason", [
    (lambda t: TokenService("other-secret-0123456789-abcdefghijkl").issue("x", Role.ADMIN),
     "Signature verification failed"),
    (lambda t: t.issue("x", Role.ADMIN, ttl_seconds=-10), "Signature has expired"),
    (lambda t: TokenService(SECRET, issuer="someone-else").issue("x", Role.ADMIN),
     "Invalid issuer"),
    (lambda t: jwt.encode({"sub": "x", "role": "emperor", "iss": "mandet", "exp": 2**40},
                          SECRET, algorithm="HS256"), "'emperor' is not a valid Role"),
    (lambda t: jwt.encode({"sub": "x", "role": "admin", "iss": "mandet", "exp": 2**40},
                          SECRET, algorithm="HS512"), "The specified alg value is not allowed"),
    (lambda t: "not-a-jwt", "Not enough segments"),
])
def test_bad_tokens_are_401_with_the_reason(mutate, reason):
    tokens = TokenService(SECRET)
    with pytest.raises(Problem) as caught:
        tokens.verify(mutate(tokens))
    assert caught.value.status == 401
    assert reason in caught.value.detail


@pytest.mark.parametrize("principal, site, icb, psc, covered", [
    (Principal("a", Role.ADMIN), "1-1", "QJK", "SW", True),
    (Principal("d", Role.DASHBOARD), "1-1", "QJK", "SW", True),
    (Principal("p", Role.PSC, pscs=frozenset({"SW"})), "1-1", "QJK", "SW", True),
    (Principal("p", Role.PSC, pscs=frozenset({"SW"})), "1-1", "QHL", "WM", False),
    (Principal("i", Role.PSC, icbs=frozenset({"QJK"})), "1-1", "QJK", "SW", True),
    (Principal("i", Role.PSC, icbs=frozenset({"QJK"})), "1-2", "QSL", "SW", False),
    (Principal("h", Role.PLATFORM, sites=frozenset({"1-1"})), "1-1", "QJK", "SW", True),
    (Principal("h", Role.PLATFORM, sites=frozenset({"1-1"})), "1-2", "QJK", "SW", False),
    (Principal("n", Role.PLATFORM), "1-1", "QJK", "SW", False),
])
def test_scope_covers_a_site_by_id_icb_or_psc(principal, site, icb, psc, covered):
    assert principal.covers_site(site, icb, psc) is covered


def test_out_of_scope_is_403_naming_the_site():
    with pytest.raises(Problem) as caught:
        Principal("p", Role.PSC, pscs=frozenset({"WM"})).require_site("1-1", "QJK", "SW")
    assert caught.value.status == 403 and "1-1" in caught.value.detail


def test_a_remembered_token_still_expires():
    import time

    tokens = TokenService(SECRET)
    token = tokens.issue("x", Role.ADMIN, ttl_seconds=1)
    assert tokens.verify(token).sub == "x"  # now remembered
    time.sleep(2.1)  # exp has one-second resolution
    with pytest.raises(Problem) as caught:
        tokens.verify(token)
    assert caught.value.status == 401 and "expired" in caught.value.detail
