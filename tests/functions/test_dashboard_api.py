"""The reads the dashboard needs: my-tenants, list-integrations, the trigger filter of
list-integration-jobs and the owner's /ledger and /jobs; and the app's static files."""

from __future__ import annotations

import io
import uuid
from typing import Any

import psycopg
import pytest
from werkzeug.test import Client

from infra.local import demo
from infra.local.gateway import Services, build
from shared.auth import authenticate
from shared.credits import store
from tests.credits_support import IMAGE, ledger, new_job, new_user, post
from tests.support import bearer, function_client, seed_tenant, service_token

pytestmark = pytest.mark.db


def get(name: str, token: str | None, **query: Any) -> Any:
    headers = bearer(token) if token else {}
    return function_client(name).get("/", query_string=query, headers=headers)


def add_member(database_url: str, tenant_id: uuid.UUID, user: uuid.UUID, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, %s)",
            [tenant_id, user, role],
        )


def insert_job(database_url: str, tenant_id: uuid.UUID, provider: str, **cols: Any) -> uuid.UUID:
    values = {"status": "success", "trigger": "manual", **cols}
    names = ", ".join(["tenant_id", "provider_slug", *values])
    marks = ", ".join(["%s"] * (2 + len(values)))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"INSERT INTO integration_jobs ({names}) VALUES ({marks}) RETURNING id",
            [tenant_id, provider, *values.values()],
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


# -- my-tenants ---------------------------------------------------------------------------


def test_my_tenants_lists_each_tenant_of_a_user_of_two_with_its_role(database_url: str) -> None:
    acme, globex = seed_tenant(database_url, "acme"), seed_tenant(database_url, "globex")
    other = seed_tenant(database_url, "initech")
    add_member(database_url, globex.id, acme.admin, "member")  # admin of acme, member of globex
    answer = get("my-tenants", acme.admin_token)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["user_id"] == str(acme.admin)
    mine = {t["slug"]: t["role"] for t in body["tenants"]}
    assert mine == {"acme": "admin", "globex": "member"}
    assert str(other.id) not in {t["id"] for t in body["tenants"]}
    assert get("my-tenants", other.member_token).get_json()["tenants"] == [
        {"id": str(other.id), "slug": "initech", "name": "Initech", "role": "member"}
    ]


def test_my_tenants_refuses_the_service_and_strangers(database_url: str) -> None:
    seed_tenant(database_url, "acme")
    assert get("my-tenants", service_token()).status_code == 403
    assert get("my-tenants", None).status_code == 401
    from shared.auth import mint_token

    nobody = mint_token(user_id=uuid.uuid4())
    assert get("my-tenants", nobody).get_json()["tenants"] == []
    assert get("my-tenants", nobody, tenant_id=str(uuid.uuid4())).status_code == 422


# -- list-integrations --------------------------------------------------------------------


def test_list_integrations_gives_each_integration_its_newest_job(database_url: str) -> None:
    acme = seed_tenant(database_url, "acme", providers={"acessorias": {}, "gestao-scouter": {}})
    globex = seed_tenant(database_url, "globex")
    insert_job(database_url, acme.id, "acessorias", created_at="2026-01-01T00:00:00Z")
    newest = insert_job(
        database_url, acme.id, "acessorias", status="error", error_message="HTTP 500",
        created_at="2026-01-02T00:00:00Z",
    )  # fmt: skip
    insert_job(database_url, globex.id, "acessorias", created_at="2026-01-03T00:00:00Z")
    answer = get("list-integrations", acme.member_token, tenant_id=str(acme.id))
    assert answer.status_code == 200, answer.get_json()
    found = {i["provider_slug"]: i for i in answer.get_json()["integrations"]}
    assert set(found) == {"acessorias", "gestao-scouter"}
    acessorias = found["acessorias"]
    assert acessorias["display_name"] == "Acessórias" and acessorias["runnable"] is True
    assert acessorias["latest_job"]["id"] == str(newest)
    assert acessorias["latest_job"]["error_message"] == "HTTP 500"
    assert "lease_token" not in acessorias["latest_job"]
    gestao = found["gestao-scouter"]
    assert gestao["display_name"] == "Gestão Scouter" and gestao["runnable"] is False
    assert gestao["latest_job"] is None


def test_list_integrations_is_for_the_tenants_members_only(database_url: str) -> None:
    acme, globex = seed_tenant(database_url, "acme"), seed_tenant(database_url, "globex")
    add_member(database_url, globex.id, acme.admin, "member")
    assert get("list-integrations", acme.admin_token, tenant_id=str(globex.id)).status_code == 200
    assert get("list-integrations", globex.member_token, tenant_id=str(acme.id)).status_code == 403
    assert get("list-integrations", service_token(), tenant_id=str(acme.id)).status_code == 200


# -- the trigger filter ---------------------------------------------------------------------


def test_list_jobs_filters_by_trigger_and_pages_by_keyset(database_url: str) -> None:
    acme = seed_tenant(database_url, "acme")
    scheduled = [
        insert_job(
            database_url, acme.id, "acessorias", trigger="schedule",
            scheduled_for=f"2026-01-0{day}T02:00:00Z", created_at=f"2026-01-0{day}T02:00:01Z",
        )
        for day in range(1, 6)
    ]  # fmt: skip
    manual = insert_job(database_url, acme.id, "acessorias", created_at="2026-01-09T00:00:00Z")
    token, tid = acme.member_token, str(acme.id)
    first = get(
        "list-integration-jobs", token, tenant_id=tid, trigger="schedule", limit=3
    ).get_json()
    assert [j["id"] for j in first["jobs"]] == [str(j) for j in scheduled[::-1][:3]]
    assert all(j["trigger"] == "schedule" for j in first["jobs"])
    rest = get(
        "list-integration-jobs", token, tenant_id=tid, trigger="schedule", limit=3,
        before=first["next_before"],
    ).get_json()  # fmt: skip
    assert [j["id"] for j in rest["jobs"]] == [str(j) for j in scheduled[1::-1]]
    assert rest["next_before"] is None
    only = get("list-integration-jobs", token, tenant_id=tid, trigger="manual").get_json()
    assert [j["id"] for j in only["jobs"]] == [str(manual)]
    bad = get("list-integration-jobs", token, tenant_id=tid, trigger="cron")
    assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["loc"] == ["trigger"]


# -- credits: /ledger and /jobs -----------------------------------------------------------------


def test_ledger_and_jobs_show_the_owner_only_their_own(database_url: str) -> None:
    alice, bob = new_user(database_url, 100), new_user(database_url, 7)
    first = new_job(database_url, alice, cost=10)
    second = new_job(database_url, alice, cost=10)
    bobs = new_job(database_url, bob, cost=10)
    with psycopg.connect(database_url) as conn:  # first debited and queued, as /start leaves it
        conn.execute(
            "INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
            " VALUES (%s, 10, 'debit', %s, %s)", [alice.id, IMAGE, first],
        )  # fmt: skip
        conn.execute("UPDATE credit_accounts SET balance = 90 WHERE user_id = %s", [alice.id])
        conn.execute(
            "UPDATE ai_jobs SET status = 'queued', queued_at = now() WHERE id = ANY(%s)",
            [[first, bobs]],
        )
    account = post("/ledger", {}, alice.token)
    assert account.status_code == 200, account.text
    assert account.json()["balance"] == 90
    assert [(e["kind"], e["amount"], e["jobId"]) for e in account.json()["entries"]] == [
        ("debit", 10, str(first))
    ]
    assert len(ledger(database_url)) == 1
    mine = post("/jobs", {"limit": 10}, alice.token).json()["jobs"]
    assert [j["id"] for j in mine] == [str(second), str(first)]
    by_id = {j["id"]: j for j in mine}
    assert by_id[str(first)]["debited"] is True and by_id[str(first)]["position"] in (1, 2)
    assert by_id[str(second)]["position"] is None and by_id[str(second)]["status"] == "pending"
    theirs = post("/jobs", {}, bob.token).json()["jobs"]
    assert [j["id"] for j in theirs] == [str(bobs)]
    assert post("/ledger", {}, bob.token).json() == {"balance": 7, "entries": []}
    assert post("/ledger", {}, service_token()).status_code == 403
    assert post("/jobs", {}, None).status_code == 401
    assert post("/jobs", {"limit": 0}, alice.token).status_code == 422


def test_ledger_balance_and_entries_are_read_on_one_snapshot(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A debit committed between the two reads of /ledger (a /start in another request) is
    either in both the balance and the entries or in neither: never a -10 entry beside a
    balance it did not move."""
    alice = new_user(database_url, 100)
    job = new_job(database_url, alice, cost=10)
    read = store._one

    def debit_meanwhile(conn: Any, name: str, params: dict[str, Any]) -> Any:
        row = read(conn, name, params)
        if name == "balance":  # /ledger read the balance: a /start debits now, and commits
            with psycopg.connect(database_url) as other:
                other.execute(
                    "INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
                    " VALUES (%s, 10, 'debit', %s, %s)", [alice.id, IMAGE, job],
                )  # fmt: skip
                other.execute(
                    "UPDATE credit_accounts SET balance = balance - 10 WHERE user_id = %s",
                    [alice.id],
                )
        return row

    monkeypatch.setattr(store, "_one", debit_meanwhile)
    account = post("/ledger", {}, alice.token)
    assert account.status_code == 200, account.text
    body = account.json()
    debited = sum(e["amount"] for e in body["entries"] if e["kind"] == "debit")
    assert body["balance"] == 100 - debited, body
    monkeypatch.undo()
    assert post("/ledger", {}, alice.token).json()["balance"] == 90


# -- the gateway's demo tokens ------------------------------------------------------------------


def test_demo_tokens_only_when_the_local_stack_asks(database_url: str) -> None:
    on = Client(build(services=Services(demo_tokens=True)))
    answer = on.get("/functions/v1/_local/demo-tokens")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    users: list[dict[str, Any]] = answer.json["users"]  # type: ignore[index]
    assert {u["name"] for u in users} == set(demo.demo_users())
    for user in users:
        principal = authenticate(f"Bearer {user['token']}")
        assert str(principal.user_id) == user["user_id"]
    off = Client(build(services=Services()))
    assert off.get("/functions/v1/_local/demo-tokens").status_code == 404


# -- the app's static files -------------------------------------------------------------------


def test_the_dashboard_serves_its_files_and_nothing_else(configure: Any) -> None:
    client = function_client("integrations-dashboard")
    index = client.get("/")
    assert index.status_code == 200 and index.mimetype == "text/html"
    policy = index.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in policy and "frame-ancestors 'none'" in policy
    assert index.headers["Cache-Control"] == "no-cache"
    module = client.get("/js/app.js")
    assert module.status_code == 200 and module.mimetype == "text/javascript"
    assert "sha256" not in module.headers["Content-Security-Policy"]
    too_long = ("/" + "a" * 256, "/js/" + "b" * 300 + ".js", "/" + "c/" * 2100 + "x")
    for path in ("/../main.py", "/js/../../main.py", "/js/nope.js", "/main.py", "/js/", "/.x",
                 *too_long):  # fmt: skip
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert missing.get_json()["error"]["code"] == "not_found"
    refused = client.post("/", json={})
    assert (
        refused.status_code == 405 and refused.get_json()["error"]["code"] == "method_not_allowed"
    )
    assert refused.headers["Allow"] == "GET, HEAD, OPTIONS"  # RFC 9110: a 405 names them
    assert client.head("/").status_code == 200
    cut_short = {"wsgi.input": io.BytesIO(b"abc"), "CONTENT_LENGTH": "10"}  # documented: 400
    assert client.get("/", environ_overrides=cut_short).status_code == 400
