"""Asymmetric user tokens (ES256, RS256 through JWKS) are held to the audience and issuer
as HS256 ones are: a wrong or missing one answers 401 at every function."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from tests.conftest import TEST_JWT_SECRET, Configure
from tests.functions.test_auth import ENDPOINTS, _Jwks, _user_claims, body_for, request
from tests.support import rows, seed_tenant, service_token

pytestmark = pytest.mark.db

ISSUER = "https://acme.supabase.example/auth/v1"


@pytest.fixture
def keys() -> Iterator[_Jwks]:
    """test_auth's JWKS endpoint on loopback (one EC and one RSA key)."""
    server = _Jwks()
    yield server
    server.server.shutdown()
    server.server.server_close()


def signed(keys: _Jwks, alg: str, user: uuid.UUID, **claims: Any) -> str:
    """A user token signed with the JWKS endpoint's key for `alg`."""
    key, kid = (keys.ec_key, "ec1") if alg == "ES256" else (keys.rsa_key, "rsa1")
    return jwt.encode(_user_claims(user, **claims), key, algorithm=alg, headers={"kid": kid})


def answer(name: str, method: str, token: str, tenant_id: uuid.UUID) -> int:
    status: int = request(name, method, token, body_for(name, tenant_id)).status_code
    return status


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[name for name, _ in ENDPOINTS])
def test_asymmetric_tokens_with_a_wrong_audience_get_401_everywhere(
    database_url: str, keys: _Jwks, configure: Configure, alg: str, endpoint: tuple[str, str]
) -> None:
    configure(JWKS_URL=keys.url)
    name, method = endpoint
    tenant = seed_tenant(database_url, "acme")
    for label, aud in [("other", "somebody-else"), ("others", ["somebody-else", "anon"]),
                       ("near", "authenticated "), ("missing", None)]:  # fmt: skip
        token = signed(keys, alg, tenant.admin, aud=aud)
        assert answer(name, method, token, tenant.id) == 401, (alg, label)
    assert rows(database_url, "SELECT count(*) AS n FROM integration_jobs")[0]["n"] == 0
    # The same token with our audience passes authentication.
    assert answer(name, method, signed(keys, alg, tenant.admin), tenant.id) != 401


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_asymmetric_tokens_from_another_issuer_get_401_when_an_issuer_is_set(
    database_url: str, keys: _Jwks, configure: Configure, alg: str
) -> None:
    configure(JWKS_URL=keys.url, JWT_ISSUER=ISSUER)
    tenant = seed_tenant(database_url, "acme")
    listing = ("list-integration-jobs", "GET")
    assert answer(*listing, signed(keys, alg, tenant.member, iss=ISSUER), tenant.id) == 200
    for label, iss in [("other", "https://evil.example/auth/v1"), ("near", ISSUER + "/"),
                       ("missing", None)]:  # fmt: skip
        token = signed(keys, alg, tenant.member, iss=iss)
        assert answer(*listing, token, tenant.id) == 401, (alg, label)
    expired = signed(keys, alg, tenant.member, iss=ISSUER, exp=int(time.time()) - 120)
    assert answer(*listing, expired, tenant.id) == 401


def test_hs256_user_tokens_from_another_issuer_get_401_when_an_issuer_is_set(
    database_url: str, configure: Configure
) -> None:
    """The README says the issuer is checked on user tokens: HS256 ones too."""
    configure(JWT_ISSUER=ISSUER)
    tenant = seed_tenant(database_url, "acme")
    listing = ("list-integration-jobs", "GET")

    def hs256(iss: str | None) -> str:
        return jwt.encode(_user_claims(tenant.member, iss=iss), TEST_JWT_SECRET, algorithm="HS256")

    assert answer(*listing, hs256(ISSUER), tenant.id) == 200
    # "supabase" is the service-role key's issuer: a user token naming it is still held to ours
    for label, iss in [("other", "https://evil.example/auth/v1"), ("near", ISSUER + "/"),
                       ("missing", None), ("service_keys", "supabase")]:  # fmt: skip
        assert answer(*listing, hs256(iss), tenant.id) == 401, label


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_asymmetric_tokens_not_yet_valid_get_401_beyond_the_clock_leeway(
    database_url: str, keys: _Jwks, configure: Configure, alg: str
) -> None:
    """nbf and iat are held to the same 30 seconds of skew as HS256 tokens' are."""
    configure(JWKS_URL=keys.url)
    tenant = seed_tenant(database_url, "acme")
    listing = ("list-integration-jobs", "GET")
    now = int(time.time())
    for claim in ("nbf", "iat"):
        near = signed(keys, alg, tenant.member, **{claim: now + 10})
        assert answer(*listing, near, tenant.id) == 200, (alg, claim)
        far = signed(keys, alg, tenant.member, **{claim: now + 45})
        assert answer(*listing, far, tenant.id) == 401, (alg, claim)


def test_service_role_tokens_keep_working_when_an_issuer_is_set(
    database_url: str, configure: Configure
) -> None:
    """Supabase's service-role key says issuer "supabase", not the user tokens' issuer: the
    issuer check is for user tokens, else the worker and the sweep would all get 401."""
    configure(JWT_ISSUER=ISSUER)
    seed_tenant(database_url, "acme")
    legacy = jwt.encode(
        {"iss": "supabase", "role": "service_role", "iat": int(time.time()),
         "exp": int(time.time()) + 600},
        TEST_JWT_SECRET, algorithm="HS256",
    )  # fmt: skip
    for token in (service_token(), legacy):
        response = request("process-integration-job", "POST", token, {})
        assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_asymmetric_tokens_without_an_expiry_get_401(
    database_url: str, keys: _Jwks, configure: Configure, alg: str
) -> None:
    """exp is required of asymmetric tokens as of HS256 ones: a token without one would
    verify for ever."""
    configure(JWKS_URL=keys.url)
    tenant = seed_tenant(database_url, "acme")
    listing = ("list-integration-jobs", "GET")
    assert answer(*listing, signed(keys, alg, tenant.member), tenant.id) == 200
    assert answer(*listing, signed(keys, alg, tenant.member, exp=None), tenant.id) == 401, alg


def test_hs256_tokens_get_401_where_no_secret_is_set(
    database_url: str, keys: _Jwks, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project on asymmetric keys alone sets no JWT secret: an HS256 token there is an
    invalid token (401), not a crash (500)."""
    monkeypatch.delenv("JWT_SECRET", raising=False)
    configure(JWKS_URL=keys.url)
    tenant = seed_tenant(database_url, "acme")
    listing = ("list-integration-jobs", "GET")
    hs256 = jwt.encode(_user_claims(tenant.member), TEST_JWT_SECRET, algorithm="HS256")
    assert answer(*listing, hs256, tenant.id) == 401
    assert answer(*listing, signed(keys, "ES256", tenant.member), tenant.id) == 200
