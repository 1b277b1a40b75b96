"""Who is calling: a user (verified JWT) or the service (service-role JWT or Cloud Tasks OIDC).

Tokens are verified, never trusted by shape: signature, expiry, audience and algorithm are
all checked, and `alg: none` is never accepted. Secrets are compared in constant time.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

import jwt

from shared import log
from shared.errors import Forbidden, ServiceUnavailable, Unauthorized
from shared.settings import Settings, get_settings

_ASYMMETRIC = ("ES256", "RS256")
_logger = log.get_logger("auth")
# Clock skew allowed on exp, nbf and iat, as PostgREST allows for the same Supabase tokens.
_LEEWAY_S = 30
# The JWKS is read again this often, and at most once per cooldown (see _KeySet).
_JWKS_LIFESPAN_S = 300.0
_JWKS_REFETCH_COOLDOWN_S = 5.0
# While reads fail, the last good keys verify this long after that read, then 503: a key
# revoked during an outage of the endpoint must not verify for as long as the outage lasts.
_JWKS_MAX_STALE_S = 3600.0


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    kind: Literal["user", "service"]
    user_id: UUID | None = None

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    def require_service(self) -> None:
        """Only the service may do this."""
        if not self.is_service:
            raise Forbidden("Only the service may call this.")


SERVICE = Principal("service")


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise Unauthorized("Missing Authorization header.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'.")
    return token.strip()


def authenticate(authorization: str | None) -> Principal:
    """Verify the request's bearer token and say who it is."""
    token = bearer_token(authorization)
    settings = get_settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token.") from exc
    alg = header.get("alg")
    if alg == "HS256":
        claims = _verify_hs256(token, settings)
    elif alg in _ASYMMETRIC and settings.auth.service_auth == "oidc" and _looks_google(token):
        return _verify_google_oidc(token, settings)
    elif alg in _ASYMMETRIC:
        claims = _verify_jwks(token, settings)
    else:
        raise Unauthorized("Invalid token.")
    return _principal_from_claims(claims)


def _verify_hs256(token: str, settings: Settings) -> dict[str, Any]:
    if settings.auth.jwt_secret is None:
        raise Unauthorized("Invalid token.")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        # Service-role tokens (Supabase legacy keys) carry no audience and the issuer
        # "supabase"; user tokens must carry our audience, and our issuer when one is set.
        service = unverified.get("role") == "service_role"
        audience = None if service else settings.auth.jwt_audience
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.auth.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=audience,
            issuer=None if service else settings.auth.jwt_issuer,
            leeway=_LEEWAY_S,
            options={"require": ["exp"], "verify_aud": audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token.") from exc
    return claims


class _KeySet:
    """The signing keys of a JWKS URL, as this instance last read them.

    Read again every ``_JWKS_LIFESPAN_S`` (so a key removed from the set, i.e. revoked,
    stops verifying by then), and at once for a key id it lacks (a rotation) — at most one
    read per ``_JWKS_REFETCH_COOLDOWN_S`` after the last one ended, failed ones included, so
    neither a stream of unknown ids nor a hung endpoint makes a read per request. A request
    whose key is known never waits: one request reads while it goes on with the keys known.
    One whose key is not waits for the read under way (a key just rotated in is then found).
    A read that fails keeps the last good keys, for ``_JWKS_MAX_STALE_S`` after the last
    good read (then 503, as before any good read).
    """

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=10)
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._read_at = -math.inf  # time.monotonic() of the last good read
        self._tried_at = -math.inf  # ... of the last read, good or not

    def key(self, kid: str) -> jwt.PyJWK:
        # A key not known (none yet, or one just rotated in) waits for a read under way, then
        # reads unless one was just made; a known key reads an old set only when nobody is.
        unknown = kid not in self._keys
        if (unknown or self._wants_read(kid)) and self._lock.acquire(blocking=unknown):
            try:
                if self._wants_read(kid):
                    self._read()
            finally:
                self._lock.release()
        if not self._keys or time.monotonic() - self._read_at > _JWKS_MAX_STALE_S:
            raise ServiceUnavailable("Cannot verify the token right now.")
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("Invalid token.")
        return key

    def _wants_read(self, kid: str) -> bool:
        now = time.monotonic()
        if now - self._tried_at < _JWKS_REFETCH_COOLDOWN_S:
            return False
        return kid not in self._keys or now - self._read_at >= _JWKS_LIFESPAN_S

    def _read(self) -> None:
        self._tried_at = time.monotonic()
        try:
            keys = {k.key_id: k for k in self._client.get_signing_keys(refresh=True) if k.key_id}
        except Exception:  # unreachable, an error page served as 200 (not JSON), no keys...
            _logger.warning("the JWKS could not be read; keeping the keys known", exc_info=True)
            return
        else:
            self._keys, self._read_at = keys, time.monotonic()
        finally:
            # The cooldown counts from the read's end: requests that queued behind a slow
            # read (longer than the cooldown) must not each make their own in turn.
            self._tried_at = time.monotonic()


@lru_cache(maxsize=4)
def _key_set(url: str) -> _KeySet:
    return _KeySet(url)


def _verify_jwks(token: str, settings: Settings) -> dict[str, Any]:
    if not settings.auth.jwks_url:
        raise Unauthorized("Invalid token.")
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = _key_set(settings.auth.jwks_url).key(str(kid))
        claims: dict[str, Any] = jwt.decode(
            token,
            key,  # the PyJWK: checked with its own algorithm, whatever the header names
            algorithms=list(_ASYMMETRIC),
            audience=settings.auth.jwt_audience,
            issuer=settings.auth.jwt_issuer,
            leeway=_LEEWAY_S,
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token.") from exc
    return claims


def _looks_google(token: str) -> bool:
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return False
    return issuer in ("https://accounts.google.com", "accounts.google.com")


def _verify_google_oidc(token: str, settings: Settings) -> Principal:
    """A Cloud Tasks OIDC token: Google-signed, our audience, an allowed service account."""
    from google.auth import exceptions as google_exceptions  # noqa: PLC0415
    from google.auth.transport import requests as google_requests  # noqa: PLC0415
    from google.oauth2 import id_token  # noqa: PLC0415

    try:
        claims = id_token.verify_token(
            token,
            google_requests.Request(),
            audience=settings.auth.oidc_audience,
            certs_url=settings.auth.oidc_certs_url,
        )
    except ValueError as exc:
        raise Unauthorized("Invalid token.") from exc
    except google_exceptions.GoogleAuthError as exc:
        raise ServiceUnavailable("Cannot verify the token right now.") from exc
    if claims.get("iss") not in ("https://accounts.google.com", "accounts.google.com"):
        raise Unauthorized("Invalid token.")
    email = str(claims.get("email", ""))
    allowed = any(hmac.compare_digest(email, a) for a in settings.auth.oidc_service_accounts)
    if not (claims.get("email_verified") and allowed):
        raise Unauthorized("Invalid token.")
    return SERVICE


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    role = claims.get("role")
    if role == "service_role":
        return SERVICE
    if role != "authenticated":
        raise Unauthorized("This token may not call this function.")
    try:
        return Principal("user", UUID(str(claims.get("sub"))))
    except ValueError as exc:
        raise Unauthorized("Invalid token.") from exc


def mint_token(*, user_id: UUID | None = None, service: bool = False, ttl_s: int = 3600) -> str:
    """A local HS256 token for a user or the service (local stack, CLI, tests)."""
    settings = get_settings()
    if settings.auth.jwt_secret is None:
        raise RuntimeError("JWT_SECRET is not set")
    now = int(time.time())
    claims: dict[str, Any] = {"iat": now, "exp": now + ttl_s}
    if service:
        claims.update(iss="supabase", role="service_role")
    else:
        if user_id is None:
            raise ValueError("a user token needs user_id")
        claims.update(sub=str(user_id), role="authenticated", aud=settings.auth.jwt_audience)
        if settings.auth.jwt_issuer:
            claims["iss"] = settings.auth.jwt_issuer
    return jwt.encode(claims, settings.auth.jwt_secret.get_secret_value(), algorithm="HS256")


def secrets_equal(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two secrets; a missing one never matches (and still costs
    a comparison, so timing does not tell a missing secret from a wrong one)."""
    same = hmac.compare_digest((given or "").encode(), (expected or "\0").encode())
    return same and bool(given) and bool(expected)
