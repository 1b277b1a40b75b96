"""Forged and misused credentials, and how each is presented to a call's auth scheme.

A call is authenticated one of three ways (`Call.scheme`): a bearer JWT (`jwt`), RunningHub's
per-job signature in the URL (`rh_sig`), or a tenant's shared secret as the bearer
(`gestao_secret`). A bearer-style credential is sent as the Authorization header with the URL
left unsigned; a signature-style one replaces the URL signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.auth import mint_token
from shared.settings import get_settings
from tests.security.world import IMAGE, ISSUER, World, one_off, rh_signature

USER, SERVICE, WEBHOOK = "user", "service", "webhook"


@dataclass(frozen=True)
class Call:
    """One well-formed request of an endpoint and who may make it."""

    label: str
    method: str = "POST"
    body: Any = None
    query: Mapping[str, str] = field(default_factory=dict)
    accepts: frozenset[str] = frozenset({USER, SERVICE})
    scheme: str = "jwt"  # jwt | rh_sig | gestao_secret
    expect: frozenset[int] = frozenset({401, 403, 404})  # what the tenant matrix accepts
    headers: Mapping[str, str] = field(default_factory=dict)
    # B markers this call sends itself and may get back as sent (an id in a 409's details
    # tells the caller nothing it did not give): the tenant matrix skips only those.
    echoes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Presented:
    """Headers to send and query parameters to set (None: remove)."""

    headers: dict[str, str]
    query: dict[str, str | None] = field(default_factory=dict)

    def apply(self, call: Call) -> tuple[dict[str, str], dict[str, str]]:
        query = {**call.query}
        for key, value in self.query.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = value
        return {**call.headers, **self.headers}, query


def bearer(token: str) -> Presented:
    """A bearer credential; a signed URL loses its signature."""
    return Presented({"Authorization": f"Bearer {token}"}, {"sig": None})


# --- the legitimate principals ------------------------------------------------------------


def legit(world: World, call: Call) -> Presented:
    """What the rightful caller of this call presents."""
    if call.scheme == "rh_sig":
        return Presented(
            {}, {"sig": rh_signature(uuid.UUID(call.query["job"]), call.query["table"])}
        )
    if call.scheme == "gestao_secret":
        side = world.a if call.query.get("tenant") == world.a.slug else world.b
        return bearer(side.webhook_secret)
    if USER in call.accepts:
        return bearer(world.a.admin_token)
    return bearer(mint_token(service=True))


def tenant_a(world: World, call: Call) -> Presented:
    """Tenant A's principal: A's admin, A's webhook secret, or the signature the call carries."""
    if call.scheme == "rh_sig":
        return Presented({})
    if call.scheme == "gestao_secret":
        return bearer(world.a.webhook_secret)
    return bearer(world.a.admin_token)


# --- forging --------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _user_claims(world: World, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(world.a.admin),
        "role": "authenticated",
        "aud": "authenticated",
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _secret() -> str:
    secret = get_settings().auth.jwt_secret
    assert secret is not None
    return secret.get_secret_value()


def _hs256(claims: dict[str, Any], key: str | None = None) -> str:
    return jwt.encode(claims, key or _secret(), algorithm="HS256")


@dataclass
class Keys:
    """The JWKS keys the functions trust, and strangers."""

    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    stranger_ec: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    stranger_rsa: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwks(self) -> bytes:
        keys = []
        for kid, key, alg in (("ec1", self.ec_key, "ES256"), ("rsa1", self.rsa_key, "RS256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return json.dumps({"keys": keys}).encode()

    def public_pem(self) -> bytes:
        return self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _alg_confusion(world: World, keys: Keys) -> str:
    """HS256 keyed with the trusted RSA public key (the classic algorithm confusion)."""
    signing_input = (
        _b64({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}) + "." + _b64(_user_claims(world))
    )
    mac = hmac.new(keys.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


# --- the credentials ------------------------------------------------------------------------

Present = Callable[[World, Keys, Call], Presented | None]


def _other_signature(world: World, keys: Keys, call: Call) -> Presented:
    """A signature or secret that is valid, but for another job or another tenant."""
    other_job = rh_signature(world.a.ai_queued)
    if call.scheme == "rh_sig":
        return Presented({}, {"sig": other_job})
    return Presented(
        {"Authorization": f"Bearer {world.b.webhook_secret}"},
        {"table": IMAGE, "job": str(world.a.ai_queued), "sig": other_job},
    )


def _one_off(world: World, keys: Keys, call: Call) -> Presented | None:
    """The right webhook signature or secret, one character off."""
    if call.scheme == "rh_sig":
        right = rh_signature(uuid.UUID(call.query["job"]), call.query["table"])
        return Presented({}, {"sig": one_off(right)})
    if call.scheme == "gestao_secret":
        return bearer(one_off(world.a.webhook_secret))
    return None  # a JWT one character off is `wrong_secret`


def _garbage(world: World, keys: Keys, call: Call) -> Presented:
    return Presented({"Authorization": "Bearer not-a-jwt"}, {"sig": "not-a-jwt"})


CREDENTIALS: dict[str, Present] = {
    "no_credentials": lambda w, k, c: Presented({}, {"sig": None}),
    "empty_bearer": lambda w, k, c: Presented({"Authorization": "Bearer "}, {"sig": ""}),
    "garbage": _garbage,
    "basic_scheme": lambda w, k, c: Presented(
        {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}, {"sig": None}
    ),
    "alg_none": lambda w, k, c: bearer(
        _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_user_claims(w)) + "."
    ),
    "expired": lambda w, k, c: bearer(_hs256(_user_claims(w, exp=int(time.time()) - 60))),
    "no_exp": lambda w, k, c: bearer(_hs256(_user_claims(w, exp=None))),
    "wrong_audience": lambda w, k, c: bearer(_hs256(_user_claims(w, aud="somebody-else"))),
    "wrong_issuer": lambda w, k, c: bearer(
        _hs256(_user_claims(w, iss="https://other-project.supabase.co/auth/v1"))
    ),
    "wrong_secret": lambda w, k, c: bearer(_hs256(_user_claims(w), one_off(_secret()))),
    "sub_not_a_uuid": lambda w, k, c: bearer(_hs256(_user_claims(w, sub="admin"))),
    "anon_key": lambda w, k, c: bearer(  # Supabase's anon key: the real secret, role anon
        _hs256(
            {
                "iss": "supabase",
                "ref": "matrix",
                "role": "anon",
                "iat": int(time.time()),
                "exp": int(time.time()) + 10 * 365 * 86400,
            }
        )
    ),
    "service_wrong_secret": lambda w, k, c: bearer(
        _hs256(
            {"iss": "supabase", "role": "service_role", "exp": int(time.time()) + 600},
            one_off(_secret()),
        )
    ),
    "service_no_exp": lambda w, k, c: bearer(_hs256({"iss": "supabase", "role": "service_role"})),
    "service_expired": lambda w, k, c: bearer(
        _hs256({"iss": "supabase", "role": "service_role", "exp": int(time.time()) - 60})
    ),
    "es256_unknown_kid": lambda w, k, c: bearer(
        jwt.encode(_user_claims(w), k.stranger_ec, algorithm="ES256", headers={"kid": "nope"})
    ),
    "rs256_unknown_kid": lambda w, k, c: bearer(
        jwt.encode(_user_claims(w), k.stranger_rsa, algorithm="RS256", headers={"kid": "nope"})
    ),
    "es256_forged_known_kid": lambda w, k, c: bearer(
        jwt.encode(_user_claims(w), k.stranger_ec, algorithm="ES256", headers={"kid": "ec1"})
    ),
    "hs256_keyed_with_public_key": lambda w, k, c: bearer(_alg_confusion(w, k)),
    "other_job_or_tenant_signature": _other_signature,
    "webhook_secret_one_off": _one_off,
    "user_where_not_accepted": lambda w, k, c: (
        None if USER in c.accepts else bearer(w.a.admin_token)
    ),
    "service_where_not_accepted": lambda w, k, c: (
        None if SERVICE in c.accepts else bearer(mint_token(service=True))
    ),
}
