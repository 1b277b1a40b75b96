"""Project keys and request authentication (the gateway's apikey check, then PostgREST's JWT).

Legacy Supabase keys are HS256 JWTs `{"iss":"supabase","ref","role","iat","exp"}` signed
with the project's JWT secret. The new API keys (`sb_publishable_...`, `sb_secret_...`) are
opaque strings the gateway maps to a role; the emulator accepts any opaque key it was
given (`opaque_keys`: key -> role), and a request sending that key as its bearer token
(or none) runs as that role (the gateway swaps it for a JWT).

The gateway only lets a request through with a valid `apikey`; PostgREST then runs it as
the role of the `Authorization: Bearer` JWT, or as `anon` when there is none (as the real
PostgREST does with db-anon-role).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from infra.emulators.postgrest.errors import GatewayError, PostgrestError

API_ROLES = ("anon", "authenticated", "service_role")
KEY_ROLES = ("anon", "service_role")
LEGACY_IAT = 1_700_000_000  # fixed, so a key is a pure function of (secret, role, ref)
LEGACY_EXP = LEGACY_IAT + 10 * 365 * 24 * 3600


def _no_key() -> GatewayError:
    return GatewayError(
        401, "No API key found in request", "No `apikey` request header or url param was found."
    )


def _bad_key() -> GatewayError:
    return GatewayError(
        401, "Invalid API key", "Double check your Supabase `anon` or `service_role` API key."
    )


@dataclass(frozen=True)
class Identity:
    """Who a request runs as."""

    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        """PostgREST answers 42501 with 401 for anon and 403 for everyone else."""
        return self.role != "anon"


def make_key(secret: str, role: str, ref: str, iat: int = LEGACY_IAT, exp: int = LEGACY_EXP) -> str:
    """A legacy API key for role, signed with the project's JWT secret."""
    claims = {"iss": "supabase", "ref": ref, "role": role, "iat": iat, "exp": exp}
    return jwt.encode(claims, secret, algorithm="HS256")


def check_api_key(apikey: str | None, secret: str, opaque_keys: Mapping[str, str]) -> str:
    """The gateway's check: the role of a valid project key, else 401."""
    if not apikey:
        raise _no_key()
    for key, key_role in opaque_keys.items():
        if hmac.compare_digest(apikey.encode(), key.encode()):
            return key_role
    try:
        claims = jwt.decode(apikey, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.InvalidTokenError as exc:
        raise _bad_key() from exc
    role = claims.get("role")
    if claims.get("iss") != "supabase" or role not in KEY_ROLES:
        raise _bad_key()
    return str(role)


def _jwt_error(code: str, message: str) -> PostgrestError:
    header = f'Bearer error="invalid_token", error_description="{message}"'
    return PostgrestError(401, code, message, headers={"WWW-Authenticate": header})


def decode_bearer(authorization: str | None, secret: str) -> Identity:
    """PostgREST's JWT step: the role to run as (anon without a token)."""
    if not authorization:
        return Identity("anon", {"role": "anon"})
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _jwt_error("PGRST301", "No suitable key or wrong key type")
    parts = token.count(".") + 1
    if parts != 3:
        raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {parts}")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise _jwt_error("PGRST303", "JWT expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise _jwt_error("PGRST301", "JWSError JWSInvalidSignature") from exc
    except jwt.InvalidTokenError as exc:
        raise _jwt_error("PGRST301", "JWT could not be decoded") from exc
    role = str(claims.get("role") or "anon")
    if role not in API_ROLES:
        raise PostgrestError(401, "22023", f'role "{role}" does not exist')
    return Identity(role, claims)


def authenticate(
    apikey: str | None,
    authorization: str | None,
    secret: str,
    opaque_keys: Mapping[str, str] | None = None,
) -> Identity:
    """Gateway key check, then the JWT: who the request runs as."""
    opaque = opaque_keys or {}
    role = check_api_key(apikey, secret, opaque)
    bearer = (authorization or "").partition(" ")[2].strip()
    if apikey in opaque and (not authorization or bearer == apikey):
        return Identity(role, {"role": role})  # the gateway swaps an opaque key for a JWT
    return decode_bearer(authorization, secret)
