"""Bearer-token auth: signed JWTs carrying a role and a scope.

Roles: ``platform`` (care-home digital platforms: post observations for their sites),
``psc`` (a Patient Safety Collaborative: its ICBs and sites), ``clinician`` (clinical
settings for residents of their sites), ``dashboard`` (read-only views), ``admin`` (all).
Scope lists site ids, ICB codes and PSC codes; a site is in scope when its id, its ICB or its
PSC is listed. Missing or invalid token -> 401; valid token, wrong role or scope -> 403.
Every route declares what it needs through ``require(...)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.problems import Problem

ALGORITHM = "HS256"


class Role(StrEnum):
    PLATFORM = "platform"
    PSC = "psc"
    CLINICIAN = "clinician"
    DASHBOARD = "dashboard"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    sites: frozenset[str] = field(default_factory=frozenset)
    icbs: frozenset[str] = field(default_factory=frozenset)
    pscs: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def covers_site(self, site_id: str, icb: str | None, psc: str | None) -> bool:
        """Admin and dashboard see everything; others only what their scope names."""
        if self.role in (Role.ADMIN, Role.DASHBOARD):
            return True
        return site_id in self.sites or (icb in self.icbs) or (psc in self.pscs)

    def require_site(self, site_id: str, icb: str | None, psc: str | None) -> None:
        if not self.covers_site(site_id, icb, psc):
            raise Problem(403, "Forbidden", f"site {site_id} is outside this token's scope")


class TokenService:
    """Issues and verifies tokens. Verified tokens are remembered until they expire (bounded),
    so a platform posting thousands of sets with one token pays for one HMAC check."""

    CACHE_SIZE = 4096

    def __init__(self, secret: str, issuer: str = "mandet") -> None:
        self._secret, self.issuer = secret, issuer
        self._verified: dict[str, tuple[Principal, float]] = {}

    def issue(self, sub: str, role: Role | str, *, sites: Iterable[str] = (),
              icbs: Iterable[str] = (), pscs: Iterable[str] = (),
              ttl_seconds: int = 3600) -> str:
        now = int(time.time())
        claims = {"sub": sub, "role": str(Role(role)), "iss": self.issuer, "iat": now,
                  "exp": now + ttl_seconds,
                  "scope": {"sites": sorted(sites), "icbs": sorted(icbs), "pscs": sorted(pscs)}}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                issuer=self.issuer, options={"require": ["exp", "sub", "iss"]})
            principal = _principal(claims)
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise _unauthorized(f"invalid token: {exc}") from exc
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()  # crude but bounded; re-verifying is only slower
        self._verified[token] = (principal, float(claims["exp"]))
        return principal


def _principal(claims: dict[str, Any]) -> Principal:
    scope = claims.get("scope") or {}
    return Principal(sub=str(claims["sub"]), role=Role(claims["role"]),
                     sites=frozenset(scope.get("sites", ())),
                     icbs=frozenset(scope.get("icbs", ())),
                     pscs=frozenset(scope.get("pscs", ())))


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


_bearer = HTTPBearer(auto_error=False)


def require(*roles: Role) -> Callable[..., Any]:
    """A dependency: the caller's Principal, if their token is valid and their role listed."""
    allowed = set(roles) | {Role.ADMIN}

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        return _admit(request, credentials.credentials if credentials else None, allowed)

    return dependency


def caller(request: Request, *roles: Role) -> Principal:
    """``require``'s checks, for a hot route that reads its request itself (no dependency
    solving); the route declares ``BEARER_DOC`` so its OpenAPI entry still says so."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return _admit(request, token if scheme.lower() == "bearer" else None,
                  set(roles) | {Role.ADMIN})


BEARER_DOC: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


def _admit(request: Request, token: str | None, allowed: set[Role]) -> Principal:
    if not token:
        raise _unauthorized("a bearer token is required")
    tokens: TokenService = request.app.state.tokens
    principal = tokens.verify(token)
    if principal.role not in allowed:
        raise Problem(403, "Forbidden", f"role {principal.role} may not use this route")
    return principal
