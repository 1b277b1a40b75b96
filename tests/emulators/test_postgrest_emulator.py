"""The Gestão Scouter (PostgREST) emulator over real HTTP and a real Postgres database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from flask import Flask, request

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.postgrest import (
    PostgrestState,
    create_app,
    ensure_remote_database,
    make_key,
)
from infra.local import pg

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
SECRET = "gestao-scouter-test-jwt-secret-0123456789abcdef"
REF = "gsemulatortest"
MERGE = "resolution=merge-duplicates, return=minimal"


def _lead(lead_id: int, **extra: Any) -> dict[str, Any]:
    row = {"id": lead_id, "name": f"Lead {lead_id}", "age": 20 + lead_id % 30}
    row.update({"phone": f"1199{lead_id:07d}", "sync_source": "tabuladormax"})
    row.update(extra)
    return row


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until check() is truthy (asynchronous listeners); fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own for the emulated remote project (created by the emulator)."""
    name = f"gs_emul_test_{os.getpid()}"
    pg.drop_database(pg_server_url, name)
    yield pg.with_dbname(pg_server_url, name)
    pg.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def emulator(remote_url: str) -> Iterator[tuple[PostgrestState, ServerHandle]]:
    opaque = {"sb_secret_test_key": "service_role", "sb_publishable_test_key": "anon"}
    state = PostgrestState(remote_url, SECRET, project_ref=REF, pool_size=4, opaque_keys=opaque)
    handle = start_in_thread(create_app(state))
    try:
        yield state, handle
    finally:
        handle.stop()
        state.close()


@pytest.fixture
def state(emulator: tuple[PostgrestState, ServerHandle], remote_url: str) -> PostgrestState:
    """The emulator state, with data, knobs, counters and webhook target reset."""
    st = emulator[0]
    with psycopg.connect(remote_url, autocommit=True) as conn:
        conn.execute("TRUNCATE public.leads, emulator.webhook_outbox")
    st.reset()
    st.webhook.url = st.webhook.secret = None
    st.set_loop_guard(True)
    return st


@pytest.fixture
def base(emulator: tuple[PostgrestState, ServerHandle]) -> str:
    return emulator[1].url


@pytest.fixture
def client(state: PostgrestState, base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base}/rest/v1", timeout=10) as c:
        yield c


@pytest.fixture
def admin(state: PostgrestState, base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base}/__admin", timeout=10) as c:
        yield c


@pytest.fixture
def remote(remote_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection to the remote database, for setup and assertions."""
    with psycopg.connect(remote_url, autocommit=True) as conn:
        yield conn


def keys(role: str = "service_role", *, bearer: str | None = None) -> dict[str, str]:
    key = make_key(SECRET, role, REF)
    return {"apikey": key, "Authorization": f"Bearer {bearer or key}"}


SERVICE = keys()
ANON = keys("anon")


def user_token(role: str = "authenticated", **claims: Any) -> str:
    body: dict[str, Any] = {"sub": "00000000-0000-0000-0000-000000000001", "role": role}
    body["aud"] = "authenticated"
    body["exp"] = int(time.time()) + 600
    body.update(claims)
    return jwt.encode(body, SECRET, algorithm="HS256")


def remote_rows(
    conn: psycopg.Connection[Any], sql: str = "SELECT id, name FROM leads"
) -> list[tuple[Any, ...]]:
    return conn.execute(sql + " ORDER BY 1").fetchall()


def upsert(client: httpx.Client, rows: Any, prefer: str = MERGE, query: str = "on_conflict=id",
           headers: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    hdrs = {**(headers if headers is not None else SERVICE), "Prefer": prefer}
    return client.post(f"/leads?{query}", json=rows, headers=hdrs)


def assert_error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message", "details", "hint"}
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message


# -- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_creates_database_roles_and_schema_race_safely(pg_server_url: str) -> None:
    name = f"gs_emul_boot_{os.getpid()}"
    url = pg.with_dbname(pg_server_url, name)
    pg.drop_database(pg_server_url, name)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ensure_remote_database(url)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        ensure_remote_database(url)  # and again, sequentially
        with psycopg.connect(url) as conn:
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname IN"
                " ('anon', 'authenticated', 'service_role') ORDER BY 1"
            ).fetchall()
            assert [r[0] for r in roles] == ["anon", "authenticated", "service_role"]
            cols = conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'leads'"
            ).fetchone()
            assert cols is not None and 20 <= cols[0] <= 30
            rls = conn.execute("SELECT relrowsecurity FROM pg_class WHERE relname = 'leads'")
            assert rls.fetchone() == (True,)
            policies = conn.execute("SELECT policyname, roles::text FROM pg_policies").fetchall()
            assert policies == [("service_role_full_access_leads", "{service_role}")]
    finally:
        pg.drop_database(pg_server_url, name)


# -- gateway and JWT ------------------------------------------------------------------------


def test_missing_api_key_is_401(client: httpx.Client) -> None:
    resp = client.get("/leads")
    assert resp.status_code == 401
    assert resp.json()["message"] == "No API key found in request"


@pytest.mark.parametrize(
    "apikey",
    [
        "not-a-key",
        make_key("another-project-secret-0123456789abcdef", "service_role", REF),
        user_token(),  # a user's token is not a project key
    ],
)
def test_invalid_api_key_is_401(client: httpx.Client, apikey: str) -> None:
    resp = client.post("/leads", json=[_lead(1)], headers={"apikey": apikey})
    assert resp.status_code == 401
    assert resp.json()["message"] == "Invalid API key"


def test_api_key_in_query_string_is_accepted(client: httpx.Client) -> None:
    key = make_key(SECRET, "service_role", REF)
    resp = client.get(f"/leads?apikey={key}", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("bearer", "code"),
    [
        (make_key("another-project-secret-0123456789abcdef", "service_role", REF), "PGRST301"),
        ("abc.def.ghi", "PGRST301"),
        ("not-a-jwt", "PGRST301"),
        (user_token(exp=int(time.time()) - 60), "PGRST303"),
    ],
)
def test_bad_jwt_in_authorization_is_401(client: httpx.Client, bearer: str, code: str) -> None:
    resp = client.get("/leads", headers=keys("anon", bearer=bearer))
    assert resp.status_code == 401
    assert resp.json()["code"] == code
    assert resp.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_opaque_keys_map_to_their_role(client: httpx.Client, remote: psycopg.Connection) -> None:
    secret_only = {"apikey": "sb_secret_test_key"}
    assert upsert(client, [_lead(1)], headers=secret_only).status_code == 201
    both = {**secret_only, "Authorization": "Bearer sb_secret_test_key"}
    assert upsert(client, [_lead(2)], headers=both).status_code == 201
    resp = upsert(client, [_lead(3)], headers={"apikey": "sb_publishable_test_key"})
    assert_error(resp, 401, "42501")
    assert upsert(client, [_lead(3)], headers={"apikey": "sb_secret_wrong"}).status_code == 401
    assert remote_rows(remote) == [(1, "Lead 1"), (2, "Lead 2")]


def test_state_keys_match_make_key(state: PostgrestState, admin: httpx.Client) -> None:
    body = admin.get("/keys").json()
    assert body["anon_key"] == state.anon_key == make_key(SECRET, "anon", REF)
    assert body["service_key"] == state.service_key
    assert jwt.decode(state.service_key, SECRET, algorithms=["HS256"])["role"] == "service_role"


# -- bulk upsert ------------------------------------------------------------------------------


def test_bulk_upsert_merge_duplicates(client: httpx.Client, remote: psycopg.Connection) -> None:
    resp = upsert(client, [_lead(i) for i in range(1, 51)])
    assert resp.status_code == 201
    assert resp.content == b""
    assert resp.headers["Preference-Applied"] == MERGE
    assert remote.execute("SELECT count(*) FROM leads").fetchone() == (50,)

    resp = upsert(client, [_lead(i, name=f"Renamed {i}") for i in range(41, 61)])
    assert resp.status_code == 201
    assert remote.execute("SELECT count(*) FROM leads").fetchone() == (60,)
    assert remote_rows(remote)[40] == (41, "Renamed 41")
    assert remote_rows(remote)[39] == (40, "Lead 40")


def test_upsert_of_a_large_batch_is_one_request(
    client: httpx.Client, remote: psycopg.Connection, state: PostgrestState
) -> None:
    rows = [_lead(i, email=f"l{i}@example.com", criado="2024-05-01T10:00:00Z") for i in range(2000)]
    assert upsert(client, rows).status_code == 201
    assert remote.execute("SELECT count(*) FROM leads").fetchone() == (2000,)
    assert state.counts["rows_written"] == 2000


def test_ignore_duplicates_keeps_existing_rows(
    client: httpx.Client, remote: psycopg.Connection
) -> None:
    assert upsert(client, [_lead(1), _lead(2)]).status_code == 201
    prefer = "resolution=ignore-duplicates, return=minimal"
    resp = upsert(client, [_lead(2, name="Changed"), _lead(3)], prefer=prefer)
    assert resp.status_code == 201
    assert resp.headers["Preference-Applied"] == prefer
    assert remote_rows(remote) == [(1, "Lead 1"), (2, "Lead 2"), (3, "Lead 3")]


def test_return_representation_answers_the_rows(client: httpx.Client) -> None:
    prefer = "resolution=merge-duplicates, return=representation"
    resp = upsert(client, [_lead(7, ficha_value="12.50")], prefer=prefer)
    assert resp.status_code == 201
    (row,) = resp.json()
    assert row["id"] == 7 and row["ficha_value"] == 12.5 and row["ficha_confirmed"] is False
    assert row["metadata"] == {}


def test_plain_insert_of_an_existing_id_is_409(client: httpx.Client) -> None:
    assert upsert(client, [_lead(1)], prefer="return=minimal", query="").status_code == 201
    resp = upsert(client, [_lead(1)], prefer="return=minimal", query="")
    assert_error(resp, 409, "23505", 'duplicate key value violates unique constraint "leads_pkey"')


def test_columns_param_missing_keys_are_null_or_default(
    client: httpx.Client, remote: psycopg.Connection
) -> None:
    cols = "on_conflict=id&columns=id,name,status,ficha_confirmed,metadata"
    rows = [{"id": 1, "name": "A"}, {"id": 2, "name": "B", "status": "novo", "extra": "ignored"}]
    # Without missing=default a missing key is NULL: ficha_confirmed is NOT NULL -> 23502.
    resp = upsert(client, rows, query=cols)
    assert_error(resp, 400, "23502")
    assert "ficha_confirmed" in resp.json()["message"]

    prefer = "resolution=merge-duplicates, missing=default, return=minimal"
    resp = upsert(client, rows, prefer=prefer, query=cols)
    assert resp.status_code == 201
    assert "missing=default" in resp.headers["Preference-Applied"]
    got = remote_rows(remote, "SELECT id, status, ficha_confirmed, metadata FROM leads")
    assert got == [(1, None, False, {}), (2, "novo", False, {})]

    # On conflict a missing key takes the column default too (EXCLUDED holds it); nothing
    # was inserted, so the upsert answers 200 (PostgREST v12, PR #2926).
    remote.execute("UPDATE leads SET ficha_confirmed = true, status = 'x' WHERE id = 2")
    resp = upsert(client, [{"id": 2, "name": "B"}], prefer=prefer, query=cols)
    assert resp.status_code == 200
    got = remote_rows(remote, "SELECT id, status, ficha_confirmed FROM leads WHERE id = 2")
    assert got == [(2, None, False)]


def test_values_are_typed_as_the_schema_cache_says(
    client: httpx.Client, remote: psycopg.Connection
) -> None:
    """json_to_recordset with the cached column types: typmods apply, objects land in jsonb."""
    row = _lead(5, ficha_value=12.345, metadata={"tags": ["a"], "n": 1}, age="31")
    resp = upsert(client, [row], query="on_conflict=id&columns=id,name,ficha_value,metadata,age")
    assert resp.status_code == 201, resp.text
    got = remote_rows(remote, "SELECT id, ficha_value::text, metadata, age FROM leads")
    assert got == [(5, "12.35", {"tags": ["a"], "n": 1}, 31)]


def test_differing_keys_without_columns_is_pgrst102(client: httpx.Client) -> None:
    resp = upsert(client, [{"id": 1, "name": "A"}, {"id": 2}])
    assert_error(resp, 400, "PGRST102", "All object keys must match")


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
def test_invalid_body_is_pgrst102(client: httpx.Client, body: bytes) -> None:
    headers = {**SERVICE, "Content-Type": "application/json", "Prefer": MERGE}
    resp = client.post("/leads?on_conflict=id", content=body, headers=headers)
    assert_error(resp, 400, "PGRST102")


def test_columns_body_reaches_postgres_as_sent(
    client: httpx.Client, remote: psycopg.Connection
) -> None:
    """With `columns=` the body is not parsed by the emulator: its bytes go to Postgres, which
    keeps non-ASCII text intact and refuses what is not UTF-8 or not JSON."""
    headers = {**SERVICE, "Content-Type": "application/json", "Prefer": MERGE}
    query = "/leads?on_conflict=id&columns=id,name"
    body = '[{"id": 1, "name": "Conceição \\u00e9 ☃"}]'.encode()
    assert client.post(query, content=body, headers=headers).status_code == 201
    assert remote_rows(remote) == [(1, "Conceição é ☃")]

    bad_utf8 = b'[{"id": 2, "name": "Jo\xe3o"}]'
    assert_error(client.post(query, content=bad_utf8, headers=headers), 400, "22021")
    nul = b'[{"id": 3, "name": "A"}]\x00[]'
    assert_error(client.post(query, content=nul, headers=headers), 400, "22021")
    assert_error(client.post(query, content=b'[{"id": 4,', headers=headers), 400, "22P02")
    assert remote_rows(remote) == [(1, "Conceição é ☃")]


def test_single_object_body_is_one_row(client: httpx.Client, remote: psycopg.Connection) -> None:
    assert upsert(client, _lead(5)).status_code == 201
    assert remote_rows(remote) == [(5, "Lead 5")]


def test_unknown_column_is_pgrst204(client: httpx.Client) -> None:
    message = "Could not find the 'nome' column of 'leads' in the schema cache"
    assert_error(upsert(client, [_lead(1, nome="x")]), 400, "PGRST204", message)
    resp = upsert(client, [_lead(1)], query="on_conflict=id&columns=id,nome")
    assert_error(resp, 400, "PGRST204", message)


def test_unique_violation_is_409(client: httpx.Client, remote: psycopg.Connection) -> None:
    resp = upsert(client, [_lead(1, external_id="E1"), _lead(2, external_id="E1")])
    assert_error(resp, 409, "23505")
    assert "leads_external_id_key" in resp.json()["message"]
    assert remote_rows(remote) == []


@pytest.mark.parametrize(
    ("row", "code", "fragment"),
    [
        ({"name": None}, "23502", 'null value in column "name"'),
        ({"age": "vinte"}, "22P02", "invalid input syntax for type integer"),
        ({"age": 500}, "23514", "violates check constraint"),
        ({"date_of_birth": "31/02/2001"}, "22008", "out of range"),
        ({"latitude": "north"}, "22P02", "invalid input syntax for type double precision"),
    ],
)
def test_bad_row_rejects_the_whole_batch_with_400(
    client: httpx.Client, remote: psycopg.Connection, row: dict[str, Any], code: str, fragment: str
) -> None:
    rows = [_lead(i) for i in range(1, 50)] + [_lead(50, **row)]
    columns = "id,name,age,phone,sync_source,date_of_birth,latitude"
    resp = upsert(client, rows, query=f"on_conflict=id&columns={columns}")
    assert_error(resp, 400, code)
    assert fragment in resp.json()["message"]
    assert remote_rows(remote) == []


def test_unknown_table_is_pgrst205(client: httpx.Client) -> None:
    resp = client.post("/lead", json=[_lead(1)], headers=SERVICE)
    assert_error(
        resp, 404, "PGRST205", "Could not find the table 'public.lead' in the schema cache"
    )
    assert client.get("/lead", headers=SERVICE).status_code == 404


def test_wrong_content_type_is_415(client: httpx.Client) -> None:
    headers = {**SERVICE, "Content-Type": "text/plain"}
    assert_error(client.post("/leads", content=b"x", headers=headers), 415, "PGRST107")


# -- read, delete, patch ----------------------------------------------------------------------


def test_get_select_filters_order_limit_offset(client: httpx.Client) -> None:
    assert upsert(client, [_lead(i, status="a" if i % 2 else "b") for i in range(1, 11)]).is_success
    resp = client.get("/leads?select=id,name&id=eq.3", headers=SERVICE)
    assert resp.status_code == 200
    assert resp.json() == [{"id": 3, "name": "Lead 3"}]
    resp = client.get("/leads?select=id&status=eq.b&order=id.desc&limit=2&offset=1",
                      headers={**SERVICE, "Prefer": "count=exact"})  # fmt: skip
    assert resp.json() == [{"id": 8}, {"id": 6}]
    assert resp.headers["Content-Range"] == "1-2/5"
    resp = client.get("/leads?select=id&id=in.(2,4,99)&status=neq.a", headers=SERVICE)
    assert resp.json() == [{"id": 2}, {"id": 4}]
    resp = client.get("/leads?select=id&email=is.null&id=gte.9", headers=SERVICE)
    assert resp.json() == [{"id": 9}, {"id": 10}]
    resp = client.get("/leads?select=id&id=not.lt.10", headers=SERVICE)
    assert resp.json() == [{"id": 10}]
    full = client.get("/leads?id=eq.1", headers=SERVICE).json()[0]
    assert set(full) >= {"id", "name", "phone", "sync_source", "created_at"}


def test_get_errors(client: httpx.Client) -> None:
    assert_error(client.get("/leads?select=id,nome", headers=SERVICE), 400, "42703",
                 "column leads.nome does not exist")  # fmt: skip
    assert_error(client.get("/leads?nome=eq.1", headers=SERVICE), 400, "42703")
    assert_error(client.get("/leads?id=within.1", headers=SERVICE), 400, "PGRST100")
    assert_error(client.get("/leads?id=eq.abc", headers=SERVICE), 400, "22P02")


def test_delete_by_eq_and_in(client: httpx.Client, remote: psycopg.Connection) -> None:
    assert upsert(client, [_lead(i) for i in range(1, 6)]).is_success
    assert client.delete("/leads?id=eq.1", headers=SERVICE).status_code == 204
    resp = client.delete("/leads?id=in.(2,3)",
                         headers={**SERVICE, "Prefer": "return=representation"})  # fmt: skip
    assert resp.status_code == 200
    assert [r["id"] for r in resp.json()] == [2, 3]
    assert remote_rows(remote) == [(4, "Lead 4"), (5, "Lead 5")]
    assert_error(client.delete("/leads", headers=SERVICE), 400, "21000",
                 "DELETE requires a WHERE clause")  # fmt: skip


def test_patch_updates_filtered_rows(client: httpx.Client, remote: psycopg.Connection) -> None:
    assert upsert(client, [_lead(1), _lead(2)]).is_success
    resp = client.patch("/leads?id=eq.2", json={"name": "Patched", "stage": "x"}, headers=SERVICE)
    assert resp.status_code == 204
    assert remote_rows(remote) == [(1, "Lead 1"), (2, "Patched")]
    resp = client.patch("/leads?id=in.(1,2)", json={"age": "44"}, headers=SERVICE)
    assert resp.status_code == 204
    assert remote_rows(remote, "SELECT id, age FROM leads") == [(1, 44), (2, 44)]


def test_patch_without_a_filter_is_refused_like_delete(
    client: httpx.Client, remote: psycopg.Connection
) -> None:
    """Supabase's safeupdate refuses an UPDATE without WHERE as it does a DELETE (400 21000);
    the emulator refused the DELETE but rewrote every row on an unfiltered PATCH."""
    assert upsert(client, [_lead(1), _lead(2)]).is_success
    assert_error(client.patch("/leads", json={"name": "Everyone"}, headers=SERVICE), 400,
                 "21000", "UPDATE requires a WHERE clause")  # fmt: skip
    assert remote_rows(remote) == [(1, "Lead 1"), (2, "Lead 2")]


# -- roles and RLS -------------------------------------------------------------------------


def test_anon_is_denied_by_rls_with_401_and_reads_nothing(
    client: httpx.Client, remote: psycopg.Connection
) -> None:
    assert upsert(client, [_lead(1)]).is_success
    resp = upsert(client, [_lead(2)], headers=ANON)
    assert_error(resp, 401, "42501",
                 'new row violates row-level security policy for table "leads"')  # fmt: skip
    assert client.get("/leads", headers=ANON).json() == []  # RLS filters silently
    assert client.get("/leads", headers=SERVICE).json()[0]["id"] == 1
    assert remote_rows(remote) == [(1, "Lead 1")]


def test_service_apikey_without_authorization_runs_as_anon(client: httpx.Client) -> None:
    resp = upsert(client, [_lead(1)], headers={"apikey": SERVICE["apikey"]})
    assert_error(resp, 401, "42501")


def test_other_roles_are_denied_by_rls_with_403(client: httpx.Client) -> None:
    resp = upsert(client, [_lead(1)], headers=keys("anon", bearer=user_token()))
    assert_error(resp, 403, "42501")


def test_rpc_reload_is_service_role_only(client: httpx.Client) -> None:
    assert_error(client.post("/rpc/reload_schema_cache", headers=ANON), 401, "42501")
    resp = client.post("/rpc/reload_schema_cache", headers=keys("anon", bearer=user_token()))
    assert_error(resp, 403, "42501")
    assert client.post("/rpc/reload_schema_cache", headers=SERVICE).status_code == 204
    assert_error(client.post("/rpc/nope", headers=SERVICE), 404, "PGRST202")


# -- OpenAPI and the schema cache -----------------------------------------------------------------


def test_openapi_root_describes_leads(client: httpx.Client) -> None:
    resp = client.get("/", headers=SERVICE)
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["swagger"] == "2.0"
    leads = doc["definitions"]["leads"]
    required = ["id", "name", "ficha_confirmed", "metadata", "created_at", "updated_at"]
    assert leads["required"] == required
    props = leads["properties"]
    assert props["id"]["type"] == "integer" and props["id"]["format"] == "bigint"
    assert props["name"] == {"type": "string", "format": "text"}
    assert props["created_at"] == {
        "default": "now()", "type": "string", "format": "timestamp with time zone"
    }  # fmt: skip
    assert props["ficha_value"] == {"type": "number", "format": "numeric"}
    assert props["ficha_confirmed"] == {"default": False, "type": "boolean", "format": "boolean"}
    assert props["metadata"] == {"format": "jsonb"}
    assert 20 <= len(props) <= 30
    assert "/rpc/reload_schema_cache" in doc["paths"]
    assert set(doc["paths"]["/leads"]) == {"get", "post", "patch", "delete"}


def test_openapi_root_is_filtered_by_role(
    client: httpx.Client, remote: psycopg.Connection, state: PostgrestState
) -> None:
    remote.execute("CREATE TABLE public.service_only (id int PRIMARY KEY)")
    remote.execute("GRANT SELECT ON public.service_only TO service_role")
    try:
        remote.execute("NOTIFY pgrst, 'reload schema'")
        wait_until(lambda: state.schema().table("service_only"))
        service = client.get("/", headers=SERVICE).json()
        anon = client.get("/", headers=ANON).json()
        assert "service_only" in service["definitions"]
        assert "service_only" not in anon["definitions"]
        assert "leads" in anon["definitions"]
        assert "/rpc/reload_schema_cache" not in anon["paths"]
    finally:
        remote.execute("DROP TABLE public.service_only")
        state.reload_schema()


def test_schema_cache_stays_stale_until_reload(
    client: httpx.Client, remote: psycopg.Connection, state: PostgrestState
) -> None:
    remote.execute("ALTER TABLE public.leads ADD COLUMN instagram text")
    try:
        resp = upsert(client, [_lead(1, instagram="@lead")])
        message = "Could not find the 'instagram' column of 'leads' in the schema cache"
        assert_error(resp, 400, "PGRST204", message)
        doc = client.get("/", headers=SERVICE).json()
        assert "instagram" not in doc["definitions"]["leads"]["properties"]

        reloads = state.counts["schema_reloads"]
        assert client.post("/rpc/reload_schema_cache", headers=SERVICE).status_code == 204
        wait_until(lambda: state.counts["schema_reloads"] > reloads)
        doc = client.get("/", headers=SERVICE).json()
        assert doc["definitions"]["leads"]["properties"]["instagram"]["format"] == "text"
        assert upsert(client, [_lead(1, instagram="@lead")]).status_code == 201
    finally:
        remote.execute("ALTER TABLE public.leads DROP COLUMN IF EXISTS instagram")
    # Dropped in the database but still cached: Postgres itself answers 42703.
    resp = upsert(client, [_lead(2, instagram="@x")])
    assert_error(resp, 400, "42703")
    state.reload_schema()
    assert_error(upsert(client, [_lead(2, instagram="@x")]), 400, "PGRST204")


# -- answers as PostgREST (v12) writes them ----------------------------------------------------

OPENAPI_TYPES = """
CREATE TYPE public.lead_stage AS ENUM ('novo', 'ativo');
CREATE DOMAIN public.nonempty_text AS text NOT NULL;
CREATE TABLE public.openapi_types (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    a_varchar   character varying,
    a_varchar20 varchar(20) NOT NULL DEFAULT 'x',
    a_character character(1),
    a_text_arr  text[] NOT NULL DEFAULT '{}',
    a_jsonb_arr jsonb[],
    a_jsonb     jsonb NOT NULL DEFAULT '{}',
    an_int      integer NOT NULL DEFAULT 42,
    a_negative  integer NOT NULL DEFAULT -1,
    a_numeric   numeric(5,1) DEFAULT 42.2,
    a_date      date DEFAULT '1900-01-01',
    a_stage     public.lead_stage DEFAULT 'novo',
    a_domain    public.nonempty_text,
    a_uuid      uuid NOT NULL DEFAULT gen_random_uuid(),
    always_id   bigint GENERATED ALWAYS AS IDENTITY
);
COMMENT ON COLUMN public.openapi_types.id IS 'the key';
GRANT SELECT ON public.openapi_types TO service_role;
"""


def test_openapi_types_defaults_and_required_as_postgrest_renders_them(
    client: httpx.Client, remote: psycopg.Connection, state: PostgrestState
) -> None:
    """PostgREST src/PostgREST/Response/OpenAPI.hs and test/spec/Feature/OpenApi/
    OpenApiSpec.hs ("PostgreSQL to Swagger Type Mapping", "array types to array", "Detects
    default values", "includes definitions to tables"): `required` is
    `filter (not . colNullable)` - every NOT NULL column, defaults included (a NOT NULL
    domain too); `format` is the type without its modifier, `maxLength` carries it;
    `default` is shown only when `parseDefault` yields JSON, so jsonb, array, identity and
    negative-number defaults are absent; the PK note follows the column comment."""
    remote.execute(OPENAPI_TYPES)
    try:
        state.reload_schema()
        resp = client.get("/", headers={**SERVICE, "Accept": "application/openapi+json"})
        assert resp.headers["Content-Type"] == "application/openapi+json; charset=utf-8"
        table = resp.json()["definitions"]["openapi_types"]
        assert table["required"] == ["id", "a_varchar20", "a_text_arr", "a_jsonb", "an_int",
                                     "a_negative", "a_domain", "a_uuid", "always_id"]  # fmt: skip
        assert table["properties"] == {
            "id": {"description": "the key\n\nNote:\nThis is a Primary Key.<pk/>",
                   "format": "bigint", "type": "integer"},
            "a_varchar": {"format": "character varying", "type": "string"},
            "a_varchar20": {"default": "x", "format": "character varying", "maxLength": 20,
                            "type": "string"},
            "a_character": {"format": "character", "maxLength": 1, "type": "string"},
            "a_text_arr": {"format": "text[]", "items": {"type": "string"}, "type": "array"},
            "a_jsonb_arr": {"format": "jsonb[]", "items": {}, "type": "array"},
            "a_jsonb": {"format": "jsonb"},
            "an_int": {"default": 42, "format": "integer", "type": "integer"},
            "a_negative": {"format": "integer", "type": "integer"},
            "a_numeric": {"default": 42.2, "format": "numeric", "type": "number"},
            "a_date": {"default": "1900-01-01", "format": "date", "type": "string"},
            "a_stage": {"default": "novo", "enum": ["novo", "ativo"],
                        "format": "public.lead_stage", "type": "string"},
            "a_domain": {"format": "text", "type": "string"},
            "a_uuid": {"default": "gen_random_uuid()", "format": "uuid", "type": "string"},
            "always_id": {"format": "bigint", "type": "integer"},
        }  # fmt: skip
    finally:
        remote.execute("DROP TABLE public.openapi_types; DROP DOMAIN public.nonempty_text;"
                       " DROP TYPE public.lead_stage")  # fmt: skip
        state.reload_schema()


def test_openapi_paths_follow_the_relation_not_the_grants(
    client: httpx.Client, remote: psycopg.Connection, state: PostgrestState
) -> None:
    """OpenAPI.hs `makePathItem`: a table the role can see gets get, post, patch and delete
    whatever it was granted (tableInsertable || tableUpdatable || tableDeletable); a view
    that cannot be written gets get only."""
    remote.execute("CREATE TABLE public.read_only (id int PRIMARY KEY)")
    remote.execute("CREATE VIEW public.lead_count AS SELECT count(*) AS n FROM public.leads")
    remote.execute("GRANT SELECT ON public.read_only, public.lead_count TO service_role")
    try:
        state.reload_schema()
        paths = client.get("/", headers=SERVICE).json()["paths"]
        assert set(paths["/read_only"]) == {"get", "post", "patch", "delete"}
        assert set(paths["/lead_count"]) == {"get"}
    finally:
        remote.execute("DROP VIEW public.lead_count; DROP TABLE public.read_only")
        state.reload_schema()


def test_insert_and_upsert_statuses_and_headers(client: httpx.Client) -> None:
    """src/PostgREST/Response.hs (create): 201, but 200 for a merge-duplicates upsert that
    inserted nothing (v12.0, PostgREST PR #2926; ignore-duplicates stays 201); no body and
    no Content-Type without return=representation; Content-Range `*/*`, `*/n` with a count;
    Preference-Applied in prefAppliedHeader's order (resolution, missing, return, count)."""
    prefer = "count=exact, return=minimal, resolution=merge-duplicates"
    first = upsert(client, [_lead(1), _lead(2)], prefer=prefer)
    assert (first.status_code, first.content) == (201, b"")
    assert "Content-Type" not in first.headers
    assert first.headers["Content-Range"] == "*/2"
    applied = "resolution=merge-duplicates, return=minimal, count=exact"
    assert first.headers["Preference-Applied"] == applied

    again = upsert(client, [_lead(1), _lead(2)])
    assert (again.status_code, again.headers["Content-Range"]) == (200, "*/*")
    assert upsert(client, [_lead(2), _lead(3)]).status_code == 201  # one new row
    ignore = "resolution=ignore-duplicates, return=minimal"
    assert upsert(client, [_lead(1)], prefer=ignore).status_code == 201

    plain = upsert(client, [_lead(4)], prefer="return=representation", query="")
    assert plain.status_code == 201
    assert plain.headers["Content-Type"] == "application/json; charset=utf-8"
    assert plain.headers["Preference-Applied"] == "return=representation"
    assert [row["id"] for row in plain.json()] == [4]
    merged = upsert(client, [_lead(4, name="Again")],
                    prefer="resolution=merge-duplicates, return=representation")  # fmt: skip
    assert merged.status_code == 200 and merged.json()[0]["name"] == "Again"


def test_read_ranges_and_counts(client: httpx.Client) -> None:
    """RangeQuery.hs `rangeStatusHeader` / `contentRangeH` and Response.hs (read):
    Content-Range `first-last/*`, `*/*` when empty, `/total` with a count; 206 when the
    count shows rows left out, 416 (PGRST103) past the end; only `count` is echoed."""
    assert upsert(client, [_lead(i) for i in range(1, 6)]).is_success
    resp = client.get("/leads?select=id&order=id&limit=2", headers=SERVICE)
    assert (resp.status_code, resp.headers["Content-Range"]) == (200, "0-1/*")
    assert "Preference-Applied" not in resp.headers
    counted = {**SERVICE, "Prefer": "count=exact, return=minimal"}
    resp = client.get("/leads?select=id&order=id&limit=2&offset=1", headers=counted)
    assert (resp.status_code, resp.headers["Content-Range"]) == (206, "1-2/5")
    assert resp.headers["Preference-Applied"] == "count=exact"
    resp = client.get("/leads?select=id", headers=counted)
    assert (resp.status_code, resp.headers["Content-Range"]) == (200, "0-4/5")
    resp = client.get("/leads?id=gt.99", headers=SERVICE)
    assert (resp.status_code, resp.headers["Content-Range"], resp.json()) == (200, "*/*", [])
    assert client.get("/leads?id=gt.99", headers=counted).headers["Content-Range"] == "*/0"
    resp = client.get("/leads?offset=7", headers=counted)
    assert_error(resp, 416, "PGRST103", "Requested range not satisfiable")
    assert resp.json()["details"] == "An offset of 7 was requested, but there are only 5 rows."


def test_patch_and_delete_headers(client: httpx.Client) -> None:
    """Response.hs (update, delete): 204 without a body, Content-Range `0-(n-1)/*` for
    PATCH and `*/*` for DELETE (`*/n` with a count)."""
    assert upsert(client, [_lead(1), _lead(2), _lead(3)]).is_success
    resp = client.patch("/leads?id=in.(1,2)", json={"stage": "x"}, headers=SERVICE)
    assert (resp.status_code, resp.headers["Content-Range"]) == (204, "0-1/*")
    assert "Content-Type" not in resp.headers
    resp = client.delete("/leads?id=eq.3", headers={**SERVICE, "Prefer": "count=exact"})
    assert (resp.status_code, resp.headers["Content-Range"]) == (204, "*/1")
    assert resp.headers["Preference-Applied"] == "count=exact"
    assert client.delete("/leads?id=eq.1", headers=SERVICE).headers["Content-Range"] == "*/*"


def test_401_answers_ask_for_a_bearer_token(client: httpx.Client) -> None:
    """src/PostgREST/Error.hs: a PgError answered 401 (42501 as anon) carries
    `WWW-Authenticate: Bearer`; a JWT error carries `Bearer error="invalid_token",
    error_description="<message>"`; 403 carries none; bodies are application/json."""
    resp = upsert(client, [_lead(1)], headers=ANON)
    assert_error(resp, 401, "42501")
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    expired = user_token(exp=int(time.time()) - 60)
    resp = client.get("/leads", headers=keys("anon", bearer=expired))
    assert_error(resp, 401, "PGRST303", "JWT expired")
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="JWT expired"'
    )
    resp = upsert(client, [_lead(1)], headers=keys("anon", bearer=user_token()))
    assert_error(resp, 403, "42501")
    assert "WWW-Authenticate" not in resp.headers


@pytest.mark.parametrize(
    ("rows", "query", "status", "code"),
    [
        ([_lead(1, nickname="x")], "on_conflict=id", 400, "PGRST204"),
        ([{"id": 2, "name": None}], "on_conflict=id", 400, "23502"),
        ([{"id": "two", "name": "A"}], "on_conflict=id", 400, "22P02"),
        ([_lead(3, external_id="E1")], "on_conflict=id", 409, "23505"),
    ],
)
def test_write_errors_map_to_postgrest_statuses(
    client: httpx.Client, rows: list[dict[str, Any]], query: str, status: int, code: str
) -> None:
    """Error.hs `mapSQLtoHTTP`: 23505 -> 409, while 23502 and 22P02 fall to its default
    400; ColumnNotFound (PGRST204, a key the schema cache lacks) -> 400; the body is
    exactly {"code","details","hint","message"}."""
    assert upsert(client, [_lead(9, external_id="E1")]).is_success
    assert_error(upsert(client, rows, query=query), status, code)


@pytest.mark.parametrize(("raise_it", "status", "body"), [
    ("RAISE EXCEPTION 'taken' USING ERRCODE = 'PT409'", 409, {"code": "PT409"}),
    ("RAISE EXCEPTION 'odd' USING ERRCODE = 'PTX42'", 500, {"code": "PTX42"}),
    ("""RAISE SQLSTATE 'PGRST' USING message = '{"code":"L001","message":"bad lead",
        "hint":"fix it"}', detail = '{"status":422,"headers":{}}'""", 422,
     {"code": "L001", "message": "bad lead", "details": None, "hint": "fix it"}),
    ("RAISE SQLSTATE 'PGRST' USING message = 'not json', detail = '{}'", 500,
     {"code": "PGRST121", "details": "Invalid JSON value for MESSAGE: 'not json'"}),
    ("""RAISE SQLSTATE 'PGRST' USING message = '{"code":"L001","message":"m"}'""", 500,
     {"code": "PGRST121", "details": "DETAIL is missing in the RAISE statement"}),
    ("""RAISE SQLSTATE 'PGRST' USING message = '{"code":"L001","message":"m"}',
        detail = '{"status":422}'""", 500,
     {"code": "PGRST121", "details": """Invalid JSON value for DETAIL: '{"status":422}'"""}),
    ("""RAISE SQLSTATE 'PGRST' USING message = '{"code":123,"message":"m"}',
        detail = '{"status":422,"headers":{}}'""", 500, {"code": "PGRST121"}),
    ("""RAISE SQLSTATE 'PGRST' USING message = '{"code":"L001","message":"m"}',
        detail = '{"status":"422","headers":{}}'""", 500, {"code": "PGRST121"}),
])  # fmt: skip
def test_a_trigger_chooses_the_status_and_the_error(
    client: httpx.Client, remote: psycopg.Connection[Any], raise_it: str, status: int,
    body: dict[str, Any],
) -> None:  # fmt: skip
    """Error.hs: `PTnnn` answers status nnn (500 when not a number); `RAISE SQLSTATE
    'PGRST'` takes code, message, details and hint from its message's JSON and the status
    from its detail's (PGRST121, a 500, when they do not parse)."""
    remote.execute(f"""
CREATE FUNCTION public.choose() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN {raise_it}; END $$;
CREATE TRIGGER choose BEFORE INSERT ON public.leads
  FOR EACH ROW EXECUTE FUNCTION public.choose();""")
    try:
        answer = upsert(client, [_lead(77)])
        assert answer.status_code == status, answer.text
        assert answer.json().items() >= body.items()
    finally:
        remote.execute("DROP TRIGGER choose ON public.leads; DROP FUNCTION public.choose()")


# -- faults ---------------------------------------------------------------------------------


def test_error_rate_gives_5xx_but_admin_is_untouched(
    client: httpx.Client, admin: httpx.Client, remote: psycopg.Connection
) -> None:
    assert admin.post("/knobs", json={"error_rate": 1.0}).status_code == 200
    for _ in range(5):
        assert upsert(client, [_lead(1)]).status_code in (500, 502, 503)
    assert remote_rows(remote) == []
    counts = admin.get("/counts").json()
    assert counts["leads"] == 0 and counts["faults"]
    assert admin.post("/knobs", json={"error_rate": 0}).status_code == 200
    assert upsert(client, [_lead(1)]).status_code == 201


def test_timeouts_hang_past_the_client_timeout(client: httpx.Client, state: PostgrestState) -> None:
    state.knobs.update({"timeout_rate": 1.0, "hang_s": 2.0})
    with pytest.raises(httpx.ReadTimeout):
        client.get("/leads", headers=SERVICE, timeout=0.2)
    state.knobs.update({"timeout_rate": 0.0, "latency_ms": 20})
    assert client.get("/leads", headers=SERVICE).status_code == 200
    # The emulator is shared by the module: the hung request must end (and be counted) here,
    # not in the counters of a later test.
    wait_until(lambda: state.stats()["by_status"].get("504"))


@pytest.mark.parametrize(("status", "code"), [(400, "23502"), (409, "23505")])
def test_reject_ids_fail_the_batch_like_a_bad_row(
    client: httpx.Client, admin: httpx.Client, remote: psycopg.Connection, status: int, code: str
) -> None:
    resp = admin.post("/knobs", json={"reject_ids": "7,13", "reject_status": status})
    assert resp.json()["reject_ids"] == ["13", "7"]
    resp = upsert(client, [_lead(i, external_id=f"E{i}") for i in range(1, 11)])
    assert_error(resp, status, code)
    assert resp.json()["details"].startswith(("Failing row contains (7,", "Key (external_id)=(E7)"))
    assert remote_rows(remote) == []
    resp = upsert(client, [_lead(i) for i in range(1, 11) if i != 7])
    assert resp.status_code == 201
    assert len(remote_rows(remote)) == 9


def test_post_commit_error_loses_the_answer_not_the_write(
    client: httpx.Client, state: PostgrestState, remote: psycopg.Connection
) -> None:
    state.knobs.update({"post_commit_error_rate": 1.0})
    assert upsert(client, [_lead(1)]).status_code == 502
    assert remote_rows(remote) == [(1, "Lead 1")]


def test_bad_knobs_are_rejected(admin: httpx.Client) -> None:
    assert admin.post("/knobs", json={"reject_status": 500}).status_code == 400
    assert admin.post("/knobs", json={"reject_ids": 5}).status_code == 400
    assert admin.post("/knobs", json={"nope": 1}).status_code == 400


# -- reverse-sync trigger -> webhook ------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny local webhook receiver recording what it gets."""
    got: list[dict[str, Any]] = []
    app = Flask("receiver")

    @app.post("/hook")
    def hook() -> tuple[str, int]:
        got.append({"auth": request.headers.get("Authorization"), "body": request.get_json()})
        return "{}", 200

    with start_in_thread(app) as handle:
        yield f"{handle.url}/hook", got


def test_trigger_posts_remote_writes_to_the_webhook(
    client: httpx.Client,
    admin: httpx.Client,
    remote: psycopg.Connection,
    receiver: tuple[str, list[dict[str, Any]]],
    state: PostgrestState,
) -> None:
    url, got = receiver
    resp = admin.post("/webhook", json={"url": url, "secret": "hook-secret"})
    assert resp.json() == {"url": url, "secret_set": True, "timeout_s": 5.0, "loop_guard": True}
    # Written by TabuladorMax (the export): no call back.
    assert upsert(client, [_lead(1), _lead(2)]).status_code == 201
    state.deliver_webhooks()
    assert got == []
    # A remote edit: one call with the row.
    remote.execute("UPDATE leads SET name = 'Editada', sync_source = 'gestao_scouter' WHERE id = 2")
    wait_until(lambda: got)
    assert got[0]["auth"] == "Bearer hook-secret"
    body = got[0]["body"]
    assert body["source"] == "gestao_scouter"
    assert body["lead"]["id"] == 2 and body["lead"]["name"] == "Editada"
    assert set(body["lead"]) >= {"phone", "updated_at", "sync_source"}
    # Written through the API by someone else: also sent.
    assert upsert(client, [_lead(3, sync_source=None)]).status_code == 201
    wait_until(lambda: len(got) == 2)
    assert got[1]["body"]["lead"]["id"] == 3
    wait_until(lambda: state.counts["webhook_sent"] == 2)


def test_loop_guard_off_sends_our_own_rows_too(
    client: httpx.Client, admin: httpx.Client, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = receiver
    resp = admin.post("/webhook", json={"url": url, "secret": "s", "loop_guard": False})
    assert resp.json()["loop_guard"] is False
    assert upsert(client, [_lead(1)]).status_code == 201
    wait_until(lambda: got)
    assert got[0]["body"]["lead"]["sync_source"] == "tabuladormax"
    assert admin.post("/webhook", json={"loop_guard": "no"}).status_code == 400


def test_webhook_without_target_is_dropped(
    remote: psycopg.Connection, state: PostgrestState, admin: httpx.Client
) -> None:
    remote.execute("INSERT INTO leads (id, name) VALUES (1, 'Remota')")
    wait_until(lambda: state.counts["webhook_dropped"] == 1)
    assert admin.post("/webhook", json={"url": 5}).status_code == 400
    assert admin.post("/webhook", json={"bogus": "x"}).status_code == 400


def test_admin_counts_and_data(
    client: httpx.Client, admin: httpx.Client, state: PostgrestState
) -> None:
    assert upsert(client, [_lead(i) for i in range(3)]).is_success
    counts = admin.get("/counts").json()
    assert counts["leads"] == 3
    assert counts["counts"]["rows_written"] == 3
    assert counts["by_path"]["/rest/v1/leads"] == 1
    data = admin.get("/data?token=leads").json()
    assert [r["id"] for r in data] == [0, 1, 2]
    assert admin.post("/seed", json={"token": "gestao_scouter", "count": 4}).status_code == 200
    assert admin.get("/counts").json()["leads"] == 7
    assert admin.post("/reload-schema").json()["tables"] == ["leads"]


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_serves_on_the_given_port(remote_url: str, state: PostgrestState) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "infra.emulators.postgrest", "--port", "0",
         "--database-url", remote_url, "--jwt-secret", SECRET, "--project-ref", REF],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "emulator on http://127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
        base = line.split(" on ", 1)[1].strip()
        resp = httpx.get(f"{base}/", headers=SERVICE, timeout=10)
        assert resp.status_code == 200 and "leads" in resp.json()["definitions"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_a_nul_in_a_filter_value_is_a_400_not_a_500(client: httpx.Client) -> None:
    """PostgreSQL refuses a NUL byte in a text value (22021), which PostgREST answers with a
    400; the emulator answered 500 XX000 (psycopg refuses it before sending, no SQLSTATE)."""
    for method, path in (("GET", "/leads?name=eq.a%00b"), ("GET", "/leads?name=like.*%00*"),
                         ("DELETE", "/leads?name=eq.%00")):  # fmt: skip
        response = client.request(method, path, headers=SERVICE)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["code"] == "22021"
