"""Authentication and authorization at every queue function, through functions-framework."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.settings import get_settings
from tests.conftest import TEST_JWT_SECRET
from tests.support import bearer, function_client, rows, seed_tenant, service_token

pytestmark = pytest.mark.db

ENDPOINTS = [
    ("run-integration", "POST"),
    ("process-integration-job", "POST"),
    ("cancel-integration-job", "POST"),
    ("list-integration-jobs", "GET"),
    ("integration-job-events", "GET"),
    ("sync-acessorias", "POST"),
]


def _user_claims(user: uuid.UUID, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": str(user), "role": "authenticated", "aud": "authenticated",
              "iat": now, "exp": now + 600}  # fmt: skip
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(user: uuid.UUID) -> dict[str, str | None]:
    sign = lambda claims, key=TEST_JWT_SECRET: jwt.encode(claims, key, algorithm="HS256")  # noqa: E731
    return {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": sign(_user_claims(user, exp=int(time.time()) - 60)),
        "no_exp": sign(_user_claims(user, exp=None)),
        "wrong_audience": sign(_user_claims(user, aud="somebody-else")),
        "alg_none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_user_claims(user)) + ".",
        "wrong_secret": sign(_user_claims(user), "another-secret-another-secret-another-secret"),
        "anon_role": sign(_user_claims(user, role="anon")),
        "no_role": sign(_user_claims(user, role=None)),
        "admin_role": sign(_user_claims(user, role="supabase_admin")),
        "service_wrong_secret": jwt.encode(
            {"role": "service_role", "exp": int(time.time()) + 60},
            "another-secret-another-secret-another-secret", algorithm="HS256",
        ),
    }  # fmt: skip


def request(name: str, method: str, token: str | None, body: dict[str, Any]) -> Any:
    headers = bearer(token) if token else {}
    client = function_client(name)
    if method == "GET":
        return client.get("/", query_string=body, headers=headers)
    return client.post("/", json=body, headers=headers)


def body_for(name: str, tenant_id: uuid.UUID) -> dict[str, Any]:
    return {
        "run-integration": {"tenant_id": str(tenant_id), "provider_slug": "acessorias"},
        "process-integration-job": {},
        "cancel-integration-job": {"job_id": str(uuid.uuid4())},
        "list-integration-jobs": {"tenant_id": str(tenant_id)},
        "integration-job-events": {"tenant_id": str(tenant_id), "max_seconds": "0.1"},
        "sync-acessorias": {"tenant_slug": "acme"},
    }[name]


@pytest.mark.parametrize(("name", "method"), ENDPOINTS)
def test_bad_tokens_get_401_everywhere(database_url: str, name: str, method: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    for label, token in bad_tokens(tenant.admin).items():
        response = request(name, method, token, body_for(name, tenant.id))
        assert response.status_code == 401, (label, response.get_json())
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert rows(database_url, "SELECT count(*) AS n FROM integration_jobs")[0]["n"] == 0


def test_member_may_read_but_not_run_or_cancel(database_url: str, recorder) -> None:  # type: ignore[no-untyped-def]
    tenant = seed_tenant(database_url, "acme")
    run = request(
        "run-integration", "POST", tenant.member_token, body_for("run-integration", tenant.id)
    )
    assert run.status_code == 403 and run.get_json()["error"]["code"] == "forbidden"
    job = request(
        "run-integration", "POST", tenant.admin_token, body_for("run-integration", tenant.id)
    )
    job_id = job.get_json()["job_id"]
    cancel = request("cancel-integration-job", "POST", tenant.member_token, {"job_id": job_id})
    assert cancel.status_code == 403
    listed = request(
        "list-integration-jobs", "GET", tenant.member_token, {"tenant_id": str(tenant.id)}
    )
    assert listed.status_code == 200 and [j["id"] for j in listed.get_json()["jobs"]] == [job_id]
    sync = request("sync-acessorias", "POST", tenant.member_token, {"tenant_slug": "acme"})
    assert sync.status_code == 403


def test_only_the_service_may_call_the_worker(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = seed_tenant(database_url, "acme")
    user = request("process-integration-job", "POST", tenant.admin_token, {})
    assert user.status_code == 403
    token = service_token()
    ok = request("process-integration-job", "POST", token, {})
    assert ok.status_code == 200 and ok.get_json()["processed"] == []
    # sync-acessorias accepts the service credential too (it then fails upstream: no token set).
    sync = request("sync-acessorias", "POST", token, {"tenant_slug": "acme"})
    assert sync.status_code == 502
    assert (
        sync.get_json()["error"]["message"] == "No acessorias token is configured for this tenant."
    )
    assert token not in capsys.readouterr().out


def json_server(payload: bytes) -> ThreadingHTTPServer:
    """A loopback server answering every GET with this JSON (key sets, certificates)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Jwks:
    """A JWKS endpoint on loopback serving one EC and one RSA public key."""

    def __init__(self) -> None:
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = []
        for kid, key, alg in (("ec1", self.ec_key, "ES256"), ("rsa1", self.rsa_key, "RS256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        payload = json.dumps({"keys": keys}).encode()

        self.server = json_server(payload)
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth/v1/.well-known/jwks.json"


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_asymmetric_user_tokens_through_jwks(database_url: str, jwks: _Jwks, configure) -> None:  # type: ignore[no-untyped-def]
    configure(JWKS_URL=jwks.url)
    tenant = seed_tenant(database_url, "acme")
    query = {"tenant_id": str(tenant.id)}
    for kid, key, alg in (("ec1", jwks.ec_key, "ES256"), ("rsa1", jwks.rsa_key, "RS256")):
        token = jwt.encode(_user_claims(tenant.member), key, algorithm=alg, headers={"kid": kid})
        assert request("list-integration-jobs", "GET", token, query).status_code == 200, alg
        expired = jwt.encode(
            _user_claims(tenant.member, exp=int(time.time()) - 120), key, algorithm=alg,
            headers={"kid": kid},
        )  # fmt: skip
        assert request("list-integration-jobs", "GET", expired, query).status_code == 401
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(
        _user_claims(tenant.member), other, algorithm="ES256", headers={"kid": "ec1"}
    )
    assert request("list-integration-jobs", "GET", forged, query).status_code == 401
    unknown_kid = jwt.encode(
        _user_claims(tenant.member), other, algorithm="ES256", headers={"kid": "x"}
    )
    assert request("list-integration-jobs", "GET", unknown_kid, query).status_code == 401


@pytest.mark.parametrize(("alg", "kid"), [("RS256", "ec1"), ("ES256", "rsa1")])
def test_a_header_naming_a_key_of_the_other_type_is_401(
    database_url: str, jwks: _Jwks, configure: Any, alg: str, kid: str
) -> None:
    """The key ids are public: a header pairing one with the other key type's algorithm
    (no signature needed) is a bad token, not a server error."""
    configure(JWKS_URL=jwks.url)
    tenant = seed_tenant(database_url, "acme")
    token = _b64({"alg": alg, "typ": "JWT", "kid": kid}) + "." + _b64(_user_claims(tenant.member))
    response = request(
        "list-integration-jobs", "GET", token + ".AAAA", {"tenant_id": str(tenant.id)}
    )
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"]["code"] == "unauthorized"


class _KeySet:
    """A JWKS endpoint on loopback whose keys a test changes (a rotation, a revocation)."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.reads = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.reads += 1
                body = json.dumps({"keys": [_public_jwk(k, v) for k, v in outer.keys.items()]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth/v1/.well-known/jwks.json"

    def publish(self, kid: str) -> Any:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        return self.keys[kid]


def _public_jwk(kid: str, key: Any) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.get_default_algorithms()["ES256"].to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


@pytest.fixture
def key_set() -> Iterator[_KeySet]:
    from shared import auth

    auth._key_set.cache_clear()
    server = _KeySet()
    yield server
    auth._key_set.cache_clear()
    server.server.shutdown()
    server.server.server_close()


def _es256(user: uuid.UUID, kid: str, key: Any) -> str:
    return jwt.encode(_user_claims(user), key, algorithm="ES256", headers={"kid": kid})


def _listing(tenant: Any, kid: str, key: Any) -> Any:
    """The tenant's member lists its jobs with a token signed by this key."""
    token = _es256(tenant.member, kid, key)
    return request("list-integration-jobs", "GET", token, {"tenant_id": str(tenant.id)})


def test_a_key_removed_from_the_key_set_stops_verifying_when_the_set_is_read_again(
    database_url: str, key_set: _KeySet, configure: Any
) -> None:
    from shared import auth

    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    old, new = key_set.publish("old"), key_set.publish("new")
    assert _listing(tenant, "old", old).status_code == 200
    del key_set.keys["old"]  # revoked (leaked, or rotated out)
    keys = auth._key_set(key_set.url)  # the set's 5 minutes pass
    keys._read_at, keys._tried_at = keys._read_at - 300, keys._tried_at - 300
    reads = key_set.reads
    assert _listing(tenant, "new", new).status_code == 200
    assert key_set.reads > reads
    revoked = _listing(tenant, "old", old)
    assert revoked.status_code == 401, revoked.get_json()


def test_a_key_published_after_the_set_was_read_verifies_after_a_short_cooldown(
    database_url: str, key_set: _KeySet, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared import auth

    monkeypatch.setattr(auth, "_JWKS_REFETCH_COOLDOWN_S", 0.2)
    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    first = key_set.publish("k1")
    assert _listing(tenant, "k1", first).status_code == 200
    second = key_set.publish("k2")  # a rotation publishes the next key
    time.sleep(0.3)
    answer = _listing(tenant, "k2", second)
    assert answer.status_code == 200, answer.get_json()


def test_an_unreachable_key_set_is_503_not_an_invalid_token(
    database_url: str, configure: Any
) -> None:
    """A 401 signs the dashboard's user out; the token may well be valid."""
    from shared import auth

    auth._key_set.cache_clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_port
    server.server_close()  # nothing listens there now
    configure(JWKS_URL=f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json")
    tenant = seed_tenant(database_url, "acme")
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        answer = _listing(tenant, "k1", key)
    finally:
        auth._key_set.cache_clear()
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "unavailable"


def test_a_hung_key_set_costs_one_read_not_one_per_request(
    database_url: str, key_set: _KeySet, configure: Any
) -> None:
    """When the set's 5 minutes pass and its endpoint hangs, one request reads while the
    others go on with the keys known (they queued behind that read, each then waiting out
    its own); the keys known stay good until a read succeeds."""
    from shared import auth

    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    key = key_set.publish("k1")
    assert _listing(tenant, "k1", key).status_code == 200
    keys = auth._key_set(key_set.url)
    reads: list[float] = []

    def hung(refresh: bool = False) -> Any:
        reads.append(time.monotonic())
        time.sleep(1.0)  # the endpoint accepts and never answers in time
        raise jwt.PyJWKClientConnectionError("timed out")

    keys._client.get_signing_keys = hung  # type: ignore[method-assign]
    keys._read_at, keys._tried_at = keys._read_at - 300, keys._tried_at - 300
    token = _es256(tenant.member, "k1", key)
    settings = get_settings()
    with ThreadPoolExecutor(6) as pool:
        verified = list(pool.map(lambda _: auth._verify_jwks(token, settings), range(6)))
    assert len(reads) == 1 and all(c["sub"] == str(tenant.member) for c in verified)


def test_a_rotated_key_verifies_while_another_request_reads_the_set(
    database_url: str, key_set: _KeySet, configure: Any
) -> None:
    """Two requests with a key just rotated in: the one that does not read must wait for the
    read, not answer 401 (which signs the dashboard's user out)."""
    from shared import auth

    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    settings = get_settings()
    auth._verify_jwks(_es256(tenant.member, "k1", key_set.publish("k1")), settings)
    token = _es256(tenant.member, "k2", key_set.publish("k2"))
    keys = auth._key_set(key_set.url)
    keys._tried_at -= 10  # past the cooldown
    real = keys._client.get_signing_keys

    def slow(refresh: bool = False) -> Any:
        time.sleep(0.5)
        return real(refresh=refresh)

    keys._client.get_signing_keys = slow  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as pool:
        verified = list(pool.map(lambda _: auth._verify_jwks(token, settings)["sub"], range(2)))
    assert verified == [str(tenant.member)] * 2


def test_a_known_key_verifies_while_another_request_reads_the_set(
    database_url: str, key_set: _KeySet, configure: Any
) -> None:
    """When the set's 5 minutes pass, one request reads it again; another with a known key,
    come in as that read starts, goes on with the keys known instead of waiting for the read
    (up to its 10 s timeout when the endpoint hangs)."""
    from shared import auth

    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    settings = get_settings()
    token = _es256(tenant.member, "k1", key_set.publish("k1"))
    auth._verify_jwks(token, settings)
    keys = auth._key_set(key_set.url)
    keys._read_at, keys._tried_at = keys._read_at - 300, keys._tried_at - 300
    reads = key_set.reads
    pool = ThreadPoolExecutor(1)
    keys._lock.acquire()  # another request holds the read: it has just begun
    try:  # the timeout is a hang guard only: the read is let go once the request is served
        served = pool.submit(auth._verify_jwks, token, settings).result(timeout=20)
    finally:
        keys._lock.release()
        pool.shutdown()
    assert served["sub"] == str(tenant.member) and key_set.reads == reads


def test_a_key_set_answered_with_an_error_page_keeps_the_last_good_keys(
    database_url: str, key_set: _KeySet, configure: Any
) -> None:
    """A proxy's HTML page with status 200 is no key set: the keys known stay in use."""
    from shared import auth

    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    key = key_set.publish("k1")
    assert _listing(tenant, "k1", key).status_code == 200
    keys = auth._key_set(key_set.url)
    keys._read_at, keys._tried_at = keys._read_at - 300, keys._tried_at - 300

    def html_page(self: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>upstream unavailable</html>")

    key_set.server.RequestHandlerClass.do_GET = html_page  # type: ignore[attr-defined]
    answer = _listing(tenant, "k1", key)
    assert answer.status_code == 200, answer.get_json()
    assert keys._tried_at > keys._read_at  # it did read again (and failed)


def test_the_last_good_keys_stop_verifying_an_hour_after_the_last_good_read(
    database_url: str, key_set: _KeySet, configure: Any
) -> None:
    """A key revoked while the endpoint is down must not verify for the whole outage."""
    from shared import auth

    configure(JWKS_URL=key_set.url)
    tenant = seed_tenant(database_url, "acme")
    key = key_set.publish("k1")
    assert _listing(tenant, "k1", key).status_code == 200
    key_set.server.shutdown()
    key_set.server.server_close()  # the endpoint is gone from now on
    keys = auth._key_set(key_set.url)
    keys._read_at, keys._tried_at = keys._read_at - 600, keys._tried_at - 600
    assert _listing(tenant, "k1", key).status_code == 200  # ten minutes stale: still good
    keys._read_at, keys._tried_at = keys._read_at - 3600, keys._tried_at - 3600
    answer = _listing(tenant, "k1", key)
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"]["code"] == "unavailable"


def test_unknown_key_ids_queued_behind_a_slow_read_make_no_read_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anyone can send tokens naming made-up keys. Queued behind a read slower than the
    cooldown, each used to find the cooldown over and make its own read in turn."""
    from shared import auth
    from shared.errors import Unauthorized

    monkeypatch.setattr(auth, "_JWKS_REFETCH_COOLDOWN_S", 0.2)  # 5 s, against a 10 s timeout
    keys = auth._KeySet("http://127.0.0.1:9/jwks.json")
    keys._keys, keys._read_at = {"k1": object()}, time.monotonic()  # type: ignore[dict-item]
    reads: list[float] = []

    def hung(refresh: bool = False) -> Any:
        reads.append(time.monotonic())
        time.sleep(0.4)
        raise jwt.PyJWKClientConnectionError("timed out")

    keys._client.get_signing_keys = hung  # type: ignore[method-assign]

    def made_up(i: int) -> None:
        with pytest.raises(Unauthorized):
            keys.key(f"made-up-{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(made_up, range(8)))
    assert len(reads) == 1


def test_tokens_from_a_clock_a_little_ahead_or_behind_are_accepted(database_url: str) -> None:
    """30 seconds of skew on exp, nbf and iat, as PostgREST allows for the same tokens."""
    tenant = seed_tenant(database_url, "acme")
    query = {"tenant_id": str(tenant.id)}
    now = int(time.time())
    sign = lambda claims: jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")  # noqa: E731
    for over in ({"iat": now + 10}, {"nbf": now + 10}, {"exp": now - 10}):
        token = sign(_user_claims(tenant.member, **over))
        assert request("list-integration-jobs", "GET", token, query).status_code == 200, over
    for off in (45, 120):  # 45: past the 30 seconds, well within a minute
        for over in ({"iat": now + off}, {"nbf": now + off}, {"exp": now - off}):
            token = sign(_user_claims(tenant.member, **over))
            assert request("list-integration-jobs", "GET", token, query).status_code == 401, over


class _GoogleCerts:
    """Google's OIDC certs endpoint, on loopback: {kid: PEM certificate}."""

    def __init__(self) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        payload = json.dumps({"k1": pem}).encode()

        self.server = json_server(payload)
        self.url = f"http://127.0.0.1:{self.server.server_port}/oauth2/v1/certs"

    def token(self, **over: Any) -> str:
        now = int(time.time())
        claims = {"iss": "https://accounts.google.com", "aud": "https://fn.example/worker",
                  "email": "tasks@proj.iam.gserviceaccount.com", "email_verified": True,
                  "iat": now, "exp": now + 300, "sub": "1234"}  # fmt: skip
        claims.update(over)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


@contextlib.contextmanager
def _google_oidc(configure: Any, **settings: str) -> Iterator[_GoogleCerts]:
    """Google's certs on loopback, the service configured to take Cloud Tasks' OIDC tokens
    from them (plus `settings`); the server is stopped afterwards."""
    certs = _GoogleCerts()
    try:
        configure(
            SERVICE_AUTH="oidc", OIDC_CERTS_URL=certs.url, OIDC_AUDIENCE="https://fn.example/worker",
            OIDC_SERVICE_ACCOUNTS='["tasks@proj.iam.gserviceaccount.com"]', **settings,
        )  # fmt: skip
        yield certs
    finally:
        certs.server.shutdown()
        certs.server.server_close()


def test_cloud_tasks_oidc_tokens_verified_with_google_auth(database_url: str, configure) -> None:  # type: ignore[no-untyped-def]
    with _google_oidc(configure) as certs:
        ok = request("process-integration-job", "POST", certs.token(), {})
        assert ok.status_code == 200, ok.get_json()
        for bad in (
            certs.token(aud="https://other.example"),
            certs.token(email="intruder@proj.iam.gserviceaccount.com"),
            certs.token(email_verified=False),
            certs.token(exp=int(time.time()) - 600, iat=int(time.time()) - 900),
        ):
            assert request("process-integration-job", "POST", bad, {}).status_code == 401


def test_cloud_tasks_oidc_tokens_with_either_google_issuer_are_accepted(
    database_url: str, configure: Any
) -> None:
    """Google signs ID tokens with the issuer `https://accounts.google.com` or the bare
    `accounts.google.com`: both are Cloud Tasks' tokens."""
    with _google_oidc(configure) as certs:
        for iss in ("https://accounts.google.com", "accounts.google.com"):
            ok = request("process-integration-job", "POST", certs.token(iss=iss), {})
            assert ok.status_code == 200, (iss, ok.get_json())
        prefix = certs.token(email="tasks@proj.iam")  # a prefix of the allowed account
        assert request("process-integration-job", "POST", prefix, {}).status_code == 401


def test_user_tokens_verify_through_jwks_when_the_service_uses_oidc(
    database_url: str, jwks: _Jwks, configure: Any
) -> None:
    """SERVICE_AUTH=oidc routes Google-issued tokens to Google's certificates; a user's
    ES256/RS256 token from Supabase still goes to the project's JWKS."""
    with _google_oidc(configure, JWKS_URL=jwks.url) as certs:
        tenant = seed_tenant(database_url, "acme")
        query = {"tenant_id": str(tenant.id)}
        for kid, key, alg in (("ec1", jwks.ec_key, "ES256"), ("rsa1", jwks.rsa_key, "RS256")):
            token = jwt.encode(
                _user_claims(tenant.member), key, algorithm=alg, headers={"kid": kid}
            )
            answer = request("list-integration-jobs", "GET", token, query)
            assert answer.status_code == 200, (alg, answer.get_json())
        worker = request("process-integration-job", "POST", certs.token(), {})
        assert worker.status_code == 200, worker.get_json()


NOWHERE = "33333333-3333-4333-8333-333333333333"  # a tenant that does not exist


@pytest.mark.parametrize(
    ("function", "method", "body"),
    [
        ("integration-alerts", "PUT", {"tenant_id": NOWHERE, "emails": []}),
        ("integration-alerts", "GET", {"tenant_id": NOWHERE}),
        ("integration-schedules", "PUT",
         {"tenant_id": NOWHERE, "provider_slug": "acessorias", "cron": "0 2 * * *"}),
        ("integration-schedules", "GET", {"tenant_id": NOWHERE}),
        ("integration-metrics", "GET", {"tenant_id": NOWHERE}),
        ("list-integration-jobs", "GET", {"tenant_id": NOWHERE}),
        ("run-integration", "POST", {"tenant_id": NOWHERE, "provider_slug": "acessorias"}),
        ("sync-acessorias", "POST", {"tenant_id": NOWHERE}),
        ("sync-acessorias", "POST", {"tenant_slug": "nowhere"}),
    ],
)  # fmt: skip
def test_the_service_naming_a_tenant_that_does_not_exist_gets_403_and_changes_nothing(
    database_url: str, function: str, method: str, body: dict[str, Any]
) -> None:
    """The service may act on any tenant, but only one that exists (the alert settings'
    insert failed on its foreign key: a 500), named by id or by slug."""
    seed_tenant(database_url, "acme")
    client = function_client(function)
    headers = bearer(service_token())
    if method == "GET":
        answer = client.get("/", query_string=body, headers=headers)
    else:
        answer = client.open("/", method=method, json=body, headers=headers)
    assert answer.status_code == 403, answer.get_json()
    assert answer.get_json()["error"]["code"] == "forbidden"
    # not "You need the admin role": the service holds every role, the tenant is what is wrong
    assert answer.get_json()["error"]["message"] == "You may not act on this tenant."
    for table in ("alert_settings", "integration_schedules", "integration_jobs"):
        assert rows(database_url, f"SELECT * FROM {table} WHERE tenant_id = %s", NOWHERE) == []


def test_a_401_names_the_scheme_to_authenticate_with(database_url: str) -> None:
    """RFC 9110: a 401 says how to authenticate (`WWW-Authenticate`), with or without a
    token, on a GET and a POST alike."""
    tenant = seed_tenant(database_url, "acme")
    for name, method in (("list-integration-jobs", "GET"), ("run-integration", "POST")):
        for token in (None, "not-a-jwt"):
            response = request(name, method, token, body_for(name, tenant.id))
            assert response.status_code == 401, (name, token)
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="syncq"'
