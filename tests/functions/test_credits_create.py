"""runninghub-queue-manager /create, and the ops CLI's credits-create: the rules of the
browser's insert (own jobs only, the server's price, allow-listed workflows and tables).

Real PostgreSQL; the RunningHub emulator only for the jobs that are started afterwards.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from infra.emulators.runninghub import RunningHubKnobs
from infra.local import demo
from infra.ops.__main__ import main as ops
from shared.credits.models import FUNCTION
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    VIDEO,
    Emulator,
    User,
    balance,
    configure_runninghub,
    job,
    ledger,
    new_user,
    post,
    priced_workflow,
    running_emulator,
    service,
    set_price,
    wait_for,
)
from tests.support import function_client, rows

pytestmark = pytest.mark.db

NODE_INPUTS = [{"nodeId": "6", "fieldName": "text", "fieldValue": "a red fox"}]


@pytest.fixture
def rh(configure: Configure) -> Iterator[Emulator]:
    with running_emulator(RunningHubKnobs(run_seconds=None)) as emulator:
        configure_runninghub(configure, emulator.url)
        yield emulator


def create(token: str, **body: Any) -> Any:
    return post("/create", body, token)


def snapshot(database_url: str) -> list[Any]:
    """Everything /create (or a start after it) could change."""
    return [
        rows(database_url, "SELECT * FROM ai_jobs ORDER BY id"),
        rows(database_url, "SELECT * FROM credit_ledger ORDER BY id"),
        rows(database_url, "SELECT * FROM credit_accounts ORDER BY user_id"),
    ]


def test_create_answers_201_with_the_pending_job_priced_by_the_server(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url, balance=100)
    workflow = priced_workflow(database_url, 30)
    set_price(database_url, workflow, 45, VIDEO)  # a price per table
    answer = create(
        user.token, table=IMAGE, workflowId=workflow, inputs=NODE_INPUTS, sessionId="tab-1"
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "pending" and body["credits_cost"] == 30
    assert body["table"] == IMAGE and body["user_id"] == str(user.id)
    assert body["workflow_id"] == workflow and body["inputs"] == NODE_INPUTS
    assert body["session_id"] == "tab-1"
    assert not body["debited"] and not body["refunded"] and body["position"] is None
    row = job(database_url, uuid.UUID(body["id"]))
    assert (row["job_table"], row["status"], row["credits_cost"]) == (IMAGE, "pending", 30)
    assert ledger(database_url) == [] and balance(database_url, user) == 100
    # the column names of the browser's insert work too; a video job takes the video price
    video = create(user.token, table=VIDEO, workflow_id=workflow, session_id="tab-1").json()
    assert (video["table"], video["credits_cost"], video["inputs"]) == (VIDEO, 45, [])
    started = post("/start", {"table": IMAGE, "jobId": body["id"]}, user.token).json()
    assert started["status"] == "running" and started["debited"]
    assert balance(database_url, user) == 70


def test_create_is_for_the_owner_only(database_url: str, rh: Emulator) -> None:
    owner, other = new_user(database_url), new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    before = snapshot(database_url)
    mine = {"table": IMAGE, "workflowId": workflow}
    answer = create(owner.token, **mine, userId=str(other.id))  # another user's id
    assert answer.status_code == 403, answer.json()
    assert answer.json()["error"]["code"] == "forbidden"
    for user_id in (None, str(owner.id)):  # the service may not create a job for anyone
        body = mine if user_id is None else {**mine, "userId": user_id}
        answer = create(service(), **body)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    for token in ("", "not-a-jwt"):
        assert create(token, **mine).status_code == 401
    assert snapshot(database_url) == before
    created = create(owner.token, **mine, userId=str(owner.id))  # one's own id is fine
    assert created.status_code == 201 and created.json()["user_id"] == str(owner.id)
    # the owner sees it; the other user cannot reach it on any route
    ref = {"table": IMAGE, "jobId": created.json()["id"]}
    assert post("/check", ref, owner.token).json()["job"]["status"] == "pending"
    assert post("/check", ref, other.token).status_code == 404


@pytest.mark.parametrize(
    "extra",
    [{"creditsCost": 0}, {"credits_cost": 1}, {"price": 0}, {"status": "queued"},
     {"external_task_id": "1"}, {"outputs": []}],
)  # fmt: skip
def test_a_price_or_a_state_cannot_be_sent(
    database_url: str, rh: Emulator, extra: dict[str, Any]
) -> None:
    user = new_user(database_url)
    body = {"table": IMAGE, "workflowId": priced_workflow(database_url, 10), **extra}
    before = snapshot(database_url)
    answer = create(user.token, **body)
    assert answer.status_code == 422, answer.json()
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {"loc": list(extra), "type": "extra_forbidden", "message": "Extra inputs are not permitted"}
    ]
    assert snapshot(database_url) == before


def test_an_unknown_workflow_is_422_and_creates_nothing(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    images_only = priced_workflow(database_url, 10)
    before = snapshot(database_url)
    for table, workflow in ((IMAGE, "never-priced"), (VIDEO, images_only)):
        answer = create(user.token, table=table, workflowId=workflow)
        assert answer.status_code == 422, answer.json()
        error = answer.json()["error"]
        assert error["code"] == "unknown_workflow"
        assert error["details"] == {"table": table, "workflowId": workflow}
    assert snapshot(database_url) == before


def bad_bodies(workflow: str) -> list[tuple[Any, int, str]]:
    ok = {"table": IMAGE, "workflowId": workflow}
    return [
        ({}, 422, "validation_error"),
        ({"table": IMAGE}, 422, "validation_error"),
        ({"workflowId": workflow}, 422, "validation_error"),
        ({**ok, "workflowId": "1 OR 1=1"}, 422, "validation_error"),
        ({**ok, "workflowId": "w" * 65}, 422, "validation_error"),
        ({**ok, "inputs": {"nodeId": "6"}}, 422, "validation_error"),
        ({**ok, "inputs": ["text"]}, 422, "validation_error"),
        ({**ok, "inputs": [{}] * 101}, 422, "validation_error"),
        ({**ok, "sessionId": "s" * 201}, 422, "validation_error"),
        ({**ok, "sessionId": ""}, 422, "validation_error"),
        ({**ok, "userId": "me"}, 422, "validation_error"),
        ({**ok, "id": "not-a-uuid"}, 422, "validation_error"),
        ({**ok, "table": ""}, 422, "validation_error"),
        ({**ok, "table": "ai_jobs"}, 400, "unknown_table"),
        ({**ok, "table": "credit_ledger"}, 400, "unknown_table"),
        ({**ok, "table": "image_jobs; DROP TABLE x"}, 400, "unknown_table"),
        (b"{not json", 400, "invalid_json"),
        (b'{"table": "image_jobs", "workflowId": "a\\u0000b"}', 400, "invalid_json"),
        ({**ok, "inputs": [{"pad": "x" * 300_000}]}, 413, "payload_too_large"),
    ]  # fmt: skip


def test_bad_bodies_are_4xx_and_change_nothing(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    before = snapshot(database_url)
    for body, status, code in bad_bodies(workflow):
        answer = post("/create", body, user.token)
        assert answer.status_code == status, (body, answer.json())
        error = answer.json()["error"]
        assert error["code"] == code and error["message"], body
    assert snapshot(database_url) == before


def test_unknown_table_is_400_without_touching_the_database(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    user = new_user(database_url)
    configure(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", DB_CONNECT_TIMEOUT_S="1")
    answer = create(user.token, table="pg_authid", workflowId="wf")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "unknown_table"
    assert answer.json()["error"]["details"]["allowed"] == [IMAGE, VIDEO]


def test_a_client_id_makes_a_retried_create_409_once_created(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    job_id = str(uuid.uuid4())
    body = {"table": IMAGE, "workflowId": workflow, "id": job_id}
    gate = threading.Barrier(8)

    def click(_: int) -> Any:
        gate.wait()
        return create(user.token, **body)

    with ThreadPoolExecutor(8) as pool:  # a double click, eight times over
        answers = list(pool.map(click, range(8)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    assert next(a for a in answers if a.status_code == 201).json()["id"] == job_id
    conflict = next(a for a in answers if a.status_code == 409).json()["error"]
    assert conflict["code"] == "job_exists"
    assert conflict["details"] == {"table": IMAGE, "jobId": job_id}
    assert [r["id"] for r in rows(database_url, "SELECT id FROM ai_jobs")] == [uuid.UUID(job_id)]
    # the same id in the other table is another job (the key is (table, id))
    set_price(database_url, workflow, 20, VIDEO)
    assert create(user.token, **{**body, "table": VIDEO}).status_code == 201


def create_keyed(token: str, key: str, **body: Any) -> Any:
    return post("/create", body, token, **{"Idempotency-Key": key})


def test_an_idempotency_key_makes_a_retried_create_answer_the_same_job(
    database_url: str, rh: Emulator
) -> None:
    """A create retried after a lost answer makes no second job, so no second debit: 201
    again with the first job, as it is now."""
    user = new_user(database_url, balance=100)
    workflow = priced_workflow(database_url, 30)
    key = str(uuid.uuid4())
    body = {"table": IMAGE, "workflowId": workflow, "inputs": NODE_INPUTS, "sessionId": "t"}
    first = create_keyed(user.token, key, **body)
    assert first.status_code == 201, first.json()
    again = create_keyed(user.token, key, **body)
    assert (again.status_code, again.json()) == (201, first.json())
    # the same request, with one's own userId and the browser's column names
    same = {"table": IMAGE, "workflow_id": workflow, "inputs": NODE_INPUTS, "session_id": "t"}
    assert create_keyed(user.token, key, **same, userId=str(user.id)).json() == first.json()
    job_id = first.json()["id"]
    assert [r["id"] for r in rows(database_url, "SELECT id FROM ai_jobs")] == [uuid.UUID(job_id)]
    started = post("/start", {"table": IMAGE, "jobId": job_id}, user.token).json()
    assert started["status"] == "running"
    # a retry after the start answers the job as it is now: started, debited once
    later = create_keyed(user.token, key, **body)
    assert later.status_code == 201
    assert later.json() == started
    assert (later.json()["status"], later.json()["debited"]) == ("running", True)
    assert [(m["kind"], m["amount"]) for m in ledger(database_url)] == [("debit", 30)]
    assert balance(database_url, user) == 70
    assert len(rows(database_url, "SELECT id FROM ai_jobs")) == 1
    # another key is another job
    other = create_keyed(user.token, str(uuid.uuid4()), **body)
    assert other.status_code == 201 and other.json()["id"] != job_id
    assert len(rows(database_url, "SELECT id FROM ai_jobs")) == 2


def test_the_same_key_with_another_request_is_422_and_changes_nothing(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    set_price(database_url, workflow, 20, VIDEO)
    body = {"table": IMAGE, "workflowId": workflow, "inputs": NODE_INPUTS}
    key = "order-42"
    first = create_keyed(user.token, key, **body)
    assert first.status_code == 201, first.json()
    before = snapshot(database_url)
    changes: list[dict[str, Any]] = [
        {"table": VIDEO},
        {"workflowId": priced_workflow(database_url, 11)},
        {"inputs": []},
        {"sessionId": "another-tab"},
        {"id": first.json()["id"]},  # even its own id: the first request had none
    ]
    for changed in changes:
        answer = create_keyed(user.token, key, **{**body, **changed})
        assert answer.status_code == 422, (changed, answer.json())
        error = answer.json()["error"]
        assert error["code"] == "idempotency_key_reused" and error["message"], changed
        assert snapshot(database_url) == before, changed
    assert create_keyed(user.token, key, **body).json()["id"] == first.json()["id"]
    # a refused create keeps no key: the same key then makes the job it is sent with
    refused = create_keyed(user.token, "k2", table=IMAGE, workflowId="never-priced")
    assert refused.json()["error"]["code"] == "unknown_workflow"
    assert snapshot(database_url) == before
    made = create_keyed(user.token, "k2", **body)
    assert made.status_code == 201 and made.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", " ", " a", "a ", "x" * 256, "a\tb", "a\x7fb", "caf\u00e9"])
def test_a_malformed_idempotency_key_is_422_and_changes_nothing(
    database_url: str, rh: Emulator, key: str
) -> None:
    user = new_user(database_url)
    body = {"table": IMAGE, "workflowId": priced_workflow(database_url, 10)}
    before = snapshot(database_url)
    answer = function_client(FUNCTION).post(  # werkzeug's client: any latin-1 value
        "/create",
        json=body,
        headers={"Authorization": f"Bearer {user.token}", "Idempotency-Key": key},
    )
    assert answer.status_code == 422, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error"
    assert [d["loc"] for d in error["details"]] == [["header", "Idempotency-Key"]]
    assert snapshot(database_url) == before


def test_the_widest_idempotency_keys_are_taken(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    body = {"table": IMAGE, "workflowId": priced_workflow(database_url, 10)}
    for key in ("x" * 255, "!", "a b ~", "~" * 2):
        first = create_keyed(user.token, key, **body)
        assert first.status_code == 201, (key, first.json())
        assert create_keyed(user.token, key, **body).json()["id"] == first.json()["id"]
    assert len(rows(database_url, "SELECT id FROM ai_jobs")) == 4


def test_a_keyed_create_keeps_its_client_id_and_its_retry_may_reorder_fields(
    database_url: str, rh: Emulator
) -> None:
    """A key and a client `id` together: the job has that id, and a retry with both answers
    it; the retry's JSON may name an input's fields in another order, and a prompt out of
    ASCII is the same request too (the request's hash is of canonical, escaped JSON)."""
    user = new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    job_id = str(uuid.uuid4())
    node = {"nodeId": "6", "fieldName": "text", "fieldValue": "uma raposa à noite ✨"}
    body = {"table": IMAGE, "workflowId": workflow, "inputs": [node], "id": job_id}
    first = create_keyed(user.token, "with-id", **body)
    assert first.status_code == 201, first.json()
    assert first.json()["id"] == job_id
    reordered = [dict(reversed(node.items()))]
    again = create_keyed(user.token, "with-id", **{**body, "inputs": reordered})
    assert (again.status_code, again.json()) == (201, first.json())
    another = create_keyed(user.token, "with-id", **{**body, "id": str(uuid.uuid4())})
    assert another.json()["error"]["code"] == "idempotency_key_reused"
    assert [r["id"] for r in rows(database_url, "SELECT id FROM ai_jobs")] == [uuid.UUID(job_id)]


def test_idempotency_keys_are_per_user(database_url: str, rh: Emulator) -> None:
    one, two = new_user(database_url), new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    body = {"table": IMAGE, "workflowId": workflow}
    mine = create_keyed(one.token, "shared-key", **body)
    theirs = create_keyed(two.token, "shared-key", **body)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["user_id"] == str(one.id) and theirs.json()["user_id"] == str(two.id)
    assert mine.json()["id"] != theirs.json()["id"]
    # another request under that key is the other user's own business
    third = new_user(database_url)
    assert create_keyed(third.token, "shared-key", table=IMAGE, workflowId=workflow,
                        sessionId="x").status_code == 201  # fmt: skip
    assert create_keyed(one.token, "shared-key", **body).json()["id"] == mine.json()["id"]
    owners = rows(database_url, "SELECT user_id FROM ai_jobs ORDER BY created_at, id")
    assert sorted(r["user_id"] for r in owners) == sorted([one.id, two.id, third.id])


def test_an_idempotency_key_is_kept_for_24_hours(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    body = {"table": IMAGE, "workflowId": priced_workflow(database_url, 10)}
    first = create_keyed(user.token, "daily", **body).json()
    with psycopg.connect(database_url) as conn:  # the first create was 23 h 59 min ago
        conn.execute("UPDATE credit_idempotency_keys"
                     " SET created_at = now() - interval '23 hours 59 minutes'")  # fmt: skip
    assert create_keyed(user.token, "daily", **body).json()["id"] == first["id"]
    with psycopg.connect(database_url) as conn:  # and now a day and a minute ago
        conn.execute("UPDATE credit_idempotency_keys"
                     " SET created_at = now() - interval '24 hours 1 minute'")  # fmt: skip
    renewed = create_keyed(user.token, "daily", **{**body, "sessionId": "next-day"})
    assert renewed.status_code == 201 and renewed.json()["id"] != first["id"]
    assert create_keyed(user.token, "daily", **body).status_code == 422  # the new request's
    assert len(rows(database_url, "SELECT id FROM ai_jobs")) == 2


def test_a_deleted_job_takes_its_idempotency_key_with_it(database_url: str, rh: Emulator) -> None:
    """A job removed (a purge, an account deleted) is not kept by its key, and the key then
    makes a new job: it answered a job that was gone."""
    user = new_user(database_url)
    body = {"table": IMAGE, "workflowId": priced_workflow(database_url, 10)}
    first = create_keyed(user.token, "purged", **body).json()
    rows(database_url, "DELETE FROM ai_jobs WHERE id = %s RETURNING id", first["id"])
    assert rows(database_url, "SELECT * FROM credit_idempotency_keys") == []
    again = create_keyed(user.token, "purged", **body)
    assert again.status_code == 201 and again.json()["id"] != first["id"]


def test_concurrent_creates_with_one_key_make_one_job_and_one_debit(
    database_url: str, rh: Emulator
) -> None:
    """Eight clients send one create at once and start what they are answered: they all
    meet in the database (the first one's insert is held until every create waits on a
    lock), and make one job, debited once."""
    user = new_user(database_url, balance=100)
    body = {"table": IMAGE, "workflowId": priced_workflow(database_url, 10)}
    key = str(uuid.uuid4())

    def create_and_start(_: int) -> tuple[int, Any, int]:
        created = create_keyed(user.token, key, **body)
        ref = {"table": IMAGE, "jobId": created.json().get("id")}
        return created.status_code, created.json(), post("/start", ref, user.token).status_code

    with ThreadPoolExecutor(8) as pool:
        with psycopg.connect(database_url) as held:  # closed (released) first on a failure
            held.execute("LOCK TABLE image_jobs IN SHARE MODE")  # no insert gets through
            answers = [pool.submit(create_and_start, n) for n in range(8)]
            wait_for(lambda: lock_waiters(database_url) == 8, 60, "eight creates waiting")
            held.rollback()  # the first claim's insert goes on; the others wait for its commit
        done = [a.result() for a in answers]
    assert [(status, started) for status, _, started in done] == [(201, 200)] * 8
    assert len({created["id"] for _, created, _ in done}) == 1
    [row] = rows(database_url, "SELECT id FROM ai_jobs")
    assert str(row["id"]) == done[0][1]["id"]
    assert [(m["kind"], m["amount"]) for m in ledger(database_url)] == [("debit", 10)]
    assert balance(database_url, user) == 90


def lock_waiters(database_url: str) -> int:
    """How many of syncq's backends of this database wait for a lock."""
    [row] = rows(
        database_url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND application_name = 'syncq'",
    )
    return int(row["n"])


def test_create_answers_cors_preflight_and_refuses_other_methods(
    database_url: str, rh: Emulator
) -> None:
    from tests.credits_support import wsgi_http

    user = new_user(database_url)
    with wsgi_http() as http:
        preflight = http.options("http://qm/create", headers={"Origin": "https://app.example"})
        assert preflight.status_code == 204
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        got = http.get("http://qm/create", headers={"Authorization": f"Bearer {user.token}"})
        assert got.status_code == 405 and got.json()["error"]["code"] == "method_not_allowed"
    assert rows(database_url, "SELECT id FROM ai_jobs") == []


# --- the ops CLI --------------------------------------------------------------------------


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = ops(argv)
    out, err = capsys.readouterr()
    return code, out, err


def json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one after another (each indented over several lines)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        document, at = decoder.raw_decode(text, at)
        found.append(document)
    return found


def test_cli_creates_a_job_for_a_demo_user_and_starts_it(
    database_url: str, rh: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = demo.TENANTS[0].admin
    for table, credits in demo.DEMO_PRICES.items():
        set_price(database_url, demo.DEMO_WORKFLOW, credits, table)
    code, out, _ = cli(["credits-create", "--demo", "acme-admin"], capsys)
    assert code == 0
    [created] = json_documents(out)
    assert created["status"] == "pending" and created["user_id"] == str(admin)
    assert created["table"] == IMAGE and created["workflow_id"] == demo.DEMO_WORKFLOW
    assert created["credits_cost"] == demo.DEMO_PRICES[IMAGE]
    assert job(database_url, uuid.UUID(created["id"]))["status"] == "pending"
    assert ops(["credits-grant", "--user", str(admin), "--amount", "100"]) == 0
    capsys.readouterr()
    argv = ["credits-create", "--demo", "acme-admin", "--table", VIDEO, "--session", "cli",
            "--inputs", json.dumps(NODE_INPUTS), "--start"]  # fmt: skip
    code, out, _ = cli(argv, capsys)
    assert code == 0
    created, started = json_documents(out)
    assert created["status"] == "pending" and created["inputs"] == NODE_INPUTS
    assert (created["table"], created["session_id"]) == (VIDEO, "cli")
    assert started["id"] == created["id"] and started["status"] == "running"
    assert started["debited"] and started["credits_cost"] == demo.DEMO_PRICES[VIDEO]
    assert balance(database_url, User(admin)) == 100 - demo.DEMO_PRICES[VIDEO]
    assert ops(["credits-show", "--user", str(admin)]) == 0  # the debit, with its job
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"user {admin}: balance {100 - demo.DEMO_PRICES[VIDEO]}"
    assert [line.split()[2:] for line in shown[1:]] == [
        ["debit", str(demo.DEMO_PRICES[VIDEO]), VIDEO, started["id"]]
    ]


def test_cli_idempotency_key_makes_a_rerun_answer_the_same_job(
    database_url: str, rh: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    user = new_user(database_url)
    workflow = priced_workflow(database_url, 10)
    argv = ["credits-create", "--user", str(user.id), "--workflow", workflow,
            "--idempotency-key", "cli-run-1"]  # fmt: skip
    code, out, _ = cli(argv, capsys)
    assert code == 0
    [first] = json_documents(out)
    code, out, _ = cli(argv, capsys)  # run again (its output was lost): the same job
    assert code == 0 and json_documents(out) == [first]
    code, out, err = cli([*argv, "--session", "other"], capsys)
    assert (code, out) == (2, "")
    assert json.loads(err)["error"]["code"] == "idempotency_key_reused"
    before = snapshot(database_url)
    with pytest.raises(SystemExit):
        ops([*argv[:-1], "a\tb"])
    assert "--idempotency-key: must be 1-255 printable ASCII" in capsys.readouterr().err
    assert snapshot(database_url) == before
    assert [r["id"] for r in rows(database_url, "SELECT id FROM ai_jobs")] == [
        uuid.UUID(first["id"])
    ]


def test_cli_refuses_what_the_route_refuses(
    database_url: str, rh: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    user = new_user(database_url)
    before = snapshot(database_url)
    code, out, err = cli(["credits-create", "--user", str(user.id), "--workflow", "nope"], capsys)
    assert (code, out) == (2, "")
    error = json.loads(err)["error"]
    assert error["code"] == "unknown_workflow"
    assert error["details"] == {"table": IMAGE, "workflowId": "nope"}
    code, _, err = cli(["credits-create", "--user", str(user.id), "--workflow", "1 OR 1=1"],
                       capsys)  # fmt: skip
    assert code == 2 and json.loads(err)["error"]["code"] == "validation_error"
    assert [d["loc"] for d in json.loads(err)["error"]["details"]] == [["--workflow"]]
    code, _, err = cli(["credits-create", "--user", str(user.id), "--session", ""], capsys)
    assert code == 2  # the option the operator gave is named, not the API's sessionId
    assert [d["loc"] for d in json.loads(err)["error"]["details"]] == [["--session"]]
    for argv in (
        ["credits-create", "--user", str(user.id), "--inputs", "{}"],  # not a JSON array
        # what the route refuses as a body (the database could not store it): a traceback
        ["credits-create", "--user", str(user.id), "--inputs", '[{"fieldValue": NaN}]'],
        ["credits-create", "--user", str(user.id), "--inputs", '[{"fieldValue": "a\\u0000b"}]'],
        ["credits-create", "--user", str(user.id), "--inputs", '[{"fieldValue": "\\ud800"}]'],
        ["credits-grant", "--user", str(user.id), "--amount", str(2**63)],  # beyond a bigint
        ["credits-grant", "--user", str(user.id), "--amount", "0"],
        ["credits-create", "--user", str(user.id), "--table", "ai_jobs"],
        ["credits-create", "--demo", "nobody-admin"],
        ["credits-create"],  # whose job?
    ):
        with pytest.raises(SystemExit):
            ops(argv)
    assert snapshot(database_url) == before


@pytest.mark.parametrize(("inputs", "why"), [
    ("[1,2", "must be a JSON array: The value is not valid JSON."),
    ('[{"fieldValue": NaN}]', "must be a JSON array: Numbers in the value must be finite."),
    ("{}", "must be a JSON array"),
])  # fmt: skip
def test_credits_create_says_what_is_wrong_with_the_inputs(
    capsys: pytest.CaptureFixture[str], inputs: str, why: str
) -> None:
    """The words are the CLI's: no "body" (there is none) and no "JSON object"."""
    with pytest.raises(SystemExit):
        ops(["credits-create", "--user", str(uuid.uuid4()), "--inputs", inputs])
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"argument --inputs: {why}"), err
