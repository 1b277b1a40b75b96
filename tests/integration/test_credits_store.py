"""Credits tables against real PostgreSQL: schema, RLS, once-only ledger, the slot lock."""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from shared import db
from shared.credits import store
from shared.credits.jobs import finish_job
from shared.credits.models import CreditJobStatus, CreditJobTable, JobKey
from shared.credits.slots import promote
from shared.errors import PaymentRequired
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    VIDEO,
    User,
    balance,
    ledger,
    new_job,
    new_user,
    set_price,
    wait_for,
)
from tests.support import rows

pytestmark = pytest.mark.db

JOB_COLUMNS = {
    "id", "session_id", "user_id", "status", "workflow_id", "inputs", "credits_cost",
    "external_task_id", "outputs", "error_message", "created_at", "queued_at", "started_at",
    "completed_at", "updated_at", "job_table",
}  # fmt: skip


def test_both_job_tables_have_the_same_columns_and_rls(database_url: str) -> None:
    columns: dict[str, set[str]] = {}
    for table in (IMAGE, VIDEO, "ai_jobs"):
        found = rows(
            database_url,
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            table,
        )
        columns[table] = {r["column_name"] for r in found}
    assert columns[IMAGE] == columns[VIDEO] == columns["ai_jobs"] == JOB_COLUMNS
    rls = rows(
        database_url,
        "SELECT relname, relrowsecurity FROM pg_class WHERE relname = ANY(%s)",
        [IMAGE, VIDEO, "ai_jobs", "credit_accounts", "credit_ledger", "credit_prices"],
    )
    assert len(rls) == 6 and all(r["relrowsecurity"] for r in rls)
    status_check = rows(
        database_url,
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint"
        " WHERE conrelid = 'ai_jobs'::regclass AND conname LIKE '%%status%%'",
    )[0]["d"]
    assert all(f"'{s.value}'" in status_check for s in CreditJobStatus)
    assert {t.value for t in CreditJobTable} == {IMAGE, VIDEO}


def _as_user(database_url: str, user: uuid.UUID) -> psycopg.Connection[Any]:
    conn = psycopg.connect(database_url)
    db.act_as_user(conn, user)  # type: ignore[arg-type]
    return conn


def test_owner_may_only_insert_pending_and_read_own_rows(database_url: str) -> None:
    alice, bob = new_user(database_url, 50), new_user(database_url, 70)
    mine = new_job(database_url, alice, table=VIDEO)
    new_job(database_url, bob)
    with _as_user(database_url, alice.id) as conn:
        seen = conn.execute("SELECT id FROM ai_jobs").fetchall()
        assert [r[0] for r in seen] == [mine]
        assert conn.execute("SELECT count(*) FROM image_jobs").fetchone() == (0,)
        assert conn.execute("SELECT balance FROM credit_accounts").fetchall() == [(50,)]
    denied = [
        ("INSERT INTO image_jobs (user_id, workflow_id, status) VALUES (%s, '1', 'running')",
         [alice.id]),
        ("INSERT INTO image_jobs (user_id, workflow_id) VALUES (%s, '1')", [bob.id]),
        ("INSERT INTO image_jobs (user_id, workflow_id, credits_cost, external_task_id)"
         " VALUES (%s, '1', 1, 'x')", [alice.id]),
        ("INSERT INTO ai_jobs (job_table, user_id, workflow_id) VALUES ('image_jobs', %s, '1')",
         [alice.id]),
        ("UPDATE video_jobs SET status = 'failed' WHERE id = %s", [mine]),
        ("DELETE FROM video_jobs WHERE id = %s", [mine]),
        ("UPDATE credit_accounts SET balance = 1000", []),
        ("INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
         " VALUES (%s, 1, 'refund', 'video_jobs', %s)", [alice.id, mine]),
    ]  # fmt: skip
    for statement, params in denied:
        with _as_user(database_url, alice.id) as conn, pytest.raises(psycopg.errors.Error):
            conn.execute(statement, params)
    assert rows(database_url, "SELECT status FROM ai_jobs WHERE id = %s", mine)[0]["status"] == (
        "pending"
    )
    assert balance(database_url, alice) == 50


@pytest.mark.parametrize(
    ("column", "value"), [("workflow_id", "1 OR 1=1"), ("inputs", Jsonb({"a": 1}))]
)
def test_check_constraints_reject_bad_rows(database_url: str, column: str, value: Any) -> None:
    set_price(database_url, "1", 5)
    values = {"user_id": uuid.uuid4(), "workflow_id": "1", column: value}
    statement = sql.SQL("INSERT INTO image_jobs ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(statement, list(values.values()))


def test_the_price_is_set_by_the_server_never_by_the_inserter(database_url: str) -> None:
    alice = new_user(database_url, 50)
    set_price(database_url, "wf-a", 30)
    with (
        _as_user(database_url, alice.id) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):  # a user may not even send a cost
        conn.execute(
            "INSERT INTO image_jobs (user_id, workflow_id, credits_cost) VALUES (%s, 'wf-a', 0)",
            [alice.id],
        )
    with _as_user(database_url, alice.id) as conn:
        mine = conn.execute(
            "INSERT INTO image_jobs (user_id, workflow_id) VALUES (%s, 'wf-a')"
            " RETURNING credits_cost",
            [alice.id],
        ).fetchone()
        assert mine == (30,)
        assert conn.execute("SELECT workflow_id, credits FROM credit_prices").fetchall() == [
            ("wf-a", 30)
        ]  # the price list is readable ...
    with _as_user(database_url, alice.id) as conn, pytest.raises(psycopg.errors.Error):
        conn.execute("UPDATE credit_prices SET credits = 1")  # ... not writable
    set_price(database_url, "wf-a", 12, VIDEO)  # a price per table
    with psycopg.connect(database_url) as conn:  # not even the owner's value is kept
        owned = conn.execute(
            "INSERT INTO video_jobs (user_id, workflow_id, credits_cost) VALUES (%s, 'wf-a', 0)"
            " RETURNING credits_cost",
            [alice.id],
        )
        assert owned.fetchone() == (12,)


def test_a_workflow_without_a_price_is_refused_and_prices_are_positive(database_url: str) -> None:
    alice = new_user(database_url, 50)
    set_price(database_url, "wf-a", 30)  # priced for images only
    with (
        _as_user(database_url, alice.id) as conn,
        pytest.raises(psycopg.errors.CheckViolation) as refused,
    ):
        conn.execute(
            "INSERT INTO video_jobs (user_id, workflow_id) VALUES (%s, 'wf-a')", [alice.id]
        )
    assert refused.value.diag.message_primary == (
        'unknown workflow "wf-a" for video_jobs: it has no price'
    )
    assert refused.value.diag.constraint_name == "ai_jobs_priced_workflow"
    for credits in (0, -5):
        with pytest.raises(psycopg.errors.CheckViolation):
            set_price(database_url, "wf-b", credits)


def test_debit_happens_once_and_a_short_balance_changes_nothing(
    database_url: str, configure: Configure
) -> None:
    user = new_user(database_url, 25)
    key = JobKey(CreditJobTable.IMAGE, new_job(database_url, user, cost=20))
    with db.transaction() as conn:
        assert store.debit(conn, key, user.id, 20) is True
    with db.transaction() as conn:
        assert store.debit(conn, key, user.id, 20) is False
    assert balance(database_url, user) == 5
    other = JobKey(CreditJobTable.IMAGE, new_job(database_url, user, cost=20))
    with pytest.raises(PaymentRequired), db.transaction() as conn:
        store.debit(conn, other, user.id, 20)
    assert balance(database_url, user) == 5
    assert [r["job_id"] for r in ledger(database_url)] == [key.id]


def test_concurrent_refunds_move_the_balance_once(database_url: str, configure: Configure) -> None:
    user = new_user(database_url, 100)
    key = JobKey(CreditJobTable.VIDEO, new_job(database_url, user, table=VIDEO, cost=40))
    with db.transaction() as conn:
        assert store.refund(conn, key) is None  # nothing debited: nothing to refund
        store.debit(conn, key, user.id, 40)
    gate = threading.Barrier(16)

    def refund(_: int) -> int | None:
        gate.wait()
        with db.transaction() as conn:
            return store.refund(conn, key)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(refund, range(16)))
    assert sorted(results, key=lambda r: r or 0) == [None] * 15 + [40]
    assert balance(database_url, user) == 100
    assert [r["kind"] for r in ledger(database_url, key.id)] == ["debit", "refund"]


def test_concurrent_promotions_never_exceed_the_slot_limit(
    database_url: str, configure: Configure
) -> None:
    configure(RUNNINGHUB_MAX_SLOTS="3")
    user = new_user(database_url, 1000)
    keys = []
    for i in range(30):
        table = CreditJobTable.IMAGE if i % 2 else CreditJobTable.VIDEO
        key = JobKey(table, new_job(database_url, user, table=table.value, cost=1))
        with db.transaction() as conn:
            store.queue(conn, key)
        keys.append(key)
    gate = threading.Barrier(12)

    def race(_: int) -> int:
        gate.wait()
        return len(promote())

    with ThreadPoolExecutor(12) as pool:
        promoted = sum(pool.map(race, range(12)))
    starting = rows(database_url, "SELECT id FROM ai_jobs WHERE status = 'starting'")
    assert promoted == len(starting) == 3
    assert {r["id"] for r in starting} == {k.id for k in keys[:3]}  # the oldest three


def _queued_job(database_url: str, user: User) -> JobKey:
    key = JobKey(CreditJobTable.IMAGE, new_job(database_url, user, cost=1))
    with db.transaction() as conn:
        store.queue(conn, key)
    return key


def _promoted(*expected: JobKey) -> None:
    """promote() takes exactly these jobs, in this order (started_at follows it)."""
    assert [JobKey.of(r) for r in promote()] == list(expected)


def _end(*keys: JobKey) -> None:
    """The jobs' tasks end (their slots free up)."""
    for key in keys:
        finish_job(key, CreditJobStatus.COMPLETED)


def test_free_slots_go_to_the_user_holding_the_fewest_fifo_within_a_user(
    database_url: str, configure: Configure
) -> None:
    configure(RUNNINGHUB_MAX_SLOTS="3")
    a, b, c = (new_user(database_url, 1000) for _ in range(3))
    a_run = [_queued_job(database_url, a) for _ in range(2)]
    c_run = _queued_job(database_url, c)
    _promoted(a_run[0], c_run, a_run[1])  # fewest held first: c before a's second job
    a_q = [_queued_job(database_url, a) for _ in range(4)]  # a's burst, then b, then c
    b_q = [_queued_job(database_url, b) for _ in range(2)]
    c_q = _queued_job(database_url, c)
    # a holds 2, c 1, b 0: b's first, then b's second and c's (level 2, b got no slot
    # yet), then a's in order
    expected = [b_q[0], b_q[1], c_q, *a_q]
    with db.transaction() as conn:
        assert store.next_in_queue(conn, 100) == expected
        mine = store.queue_positions(conn, a.id, None)
        assert [(p.key, p.position) for p in mine] == [(k, 4 + i) for i, k in enumerate(a_q)]
        assert store.position_of(conn, c_q) == 3
        assert store.queue_positions(conn, None, None) == []
    _promoted()  # no free slot
    configure(RUNNINGHUB_MAX_SLOTS="6")
    # Three slots free at once are given one by one: once b's first starts, b and c hold
    # one each and c got its slot longer ago, so c's goes before b's second (the order
    # above, read before anything started, is the estimate queued users are shown).
    _promoted(b_q[0], c_q, b_q[1])
    with db.transaction() as conn:
        assert store.next_in_queue(conn, 100) == a_q


def test_users_take_turns_when_every_slot_frees_before_the_next_decision(
    database_url: str, configure: Configure
) -> None:
    configure(RUNNINGHUB_MAX_SLOTS="1")
    a, b, c = (new_user(database_url, 1000) for _ in range(3))
    a_q = [_queued_job(database_url, a) for _ in range(4)]  # a's burst first
    b_q = [_queued_job(database_url, b) for _ in range(2)]
    c_q = [_queued_job(database_url, c) for _ in range(1)]
    order = [a_q[0], b_q[0], c_q[0], a_q[1], b_q[1], a_q[2], a_q[3]]  # round-robin
    for key in order:  # each time nobody holds a slot: the tie goes to the least served
        _promoted(key)
        _end(key)
    _promoted()


def test_a_stale_put_back_leaves_a_later_promotion_of_the_job_alone(
    database_url: str, configure: Configure
) -> None:
    """A requeue whose answer was lost, tried again, finds the job promoted again since (by
    another pump, now launching it): it must not put that promotion back in the queue."""
    configure(RUNNINGHUB_MAX_SLOTS="1")
    key = _queued_job(database_url, new_user(database_url, 1000))
    [first] = promote()
    with db.transaction() as conn:
        assert store.requeue(conn, key, first["started_at"]) is not None
    [second] = promote()
    assert second["started_at"] != first["started_at"]
    with db.transaction() as conn:
        assert store.requeue(conn, key, first["started_at"]) is None  # the stale try
    [row] = rows(database_url, "SELECT status, started_at FROM ai_jobs WHERE id = %s", key.id)
    assert (row["status"], row["started_at"]) == ("starting", second["started_at"])


def test_ops_cli_grants_and_shows_credits(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.ops.__main__ import main

    user = uuid.uuid4()
    assert main(["credits-grant", "--user", str(user), "--amount", "30"]) == 0
    assert main(["credits-grant", "--user", str(user), "--amount", "12"]) == 0
    assert main(["credits-show", "--user", str(user)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"user {user}: balance 42"
    with pytest.raises(SystemExit):
        main(["credits-grant", "--user", str(user), "--amount", "0"])


def test_a_ledger_with_few_recent_rows_does_not_read_every_users_ledger(
    database_url: str,
) -> None:
    """Ordered by id, /ledger walked the primary key backwards through every user's entries
    (0.6-0.8 s at 4M rows for a new user)."""
    from psycopg.rows import dict_row

    from shared.sqlfiles import query

    others = [uuid.uuid4() for _ in range(150)]  # over 100: the new user is no common value
    with psycopg.connect(database_url) as conn:
        conn.execute("SET session_replication_role = replica")  # no jobs behind the rows
        conn.execute(
            "INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
            " SELECT (%s::uuid[])[1 + g %% 150], 10, 'debit', 'image_jobs', gen_random_uuid()"
            " FROM generate_series(1, 240000) AS g",
            [others],
        )
        conn.execute("ANALYZE credit_ledger")
    user = new_user(database_url)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        explained = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + query("credits", "user_ledger"),
            {"user_id": user.id, "limit": 100},
        ).fetchone()
    assert explained is not None
    nodes, stack = [], [explained["QUERY PLAN"][0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    assert sum(n.get("Rows Removed by Filter", 0) for n in nodes) == 0


def test_the_ledger_lists_the_debit_taken_last_first(database_url: str) -> None:
    """A /start whose transaction began first but debited last (it waited on a lock) is the
    latest move of the balance; stamped with its transaction's start, it was listed below
    (found by the diff review of the ledger's order)."""
    from psycopg.rows import dict_row

    user = new_user(database_url, balance=100)
    first, second = new_job(database_url, user), new_job(database_url, user)
    with psycopg.connect(database_url, row_factory=dict_row) as slow:
        slow.execute("SELECT 1")  # its transaction starts (now() is fixed here)
        with psycopg.connect(database_url, row_factory=dict_row) as fast:
            store.debit(fast, JobKey(CreditJobTable.IMAGE, second), user.id, 10)
        store.debit(
            slow, JobKey(CreditJobTable.IMAGE, first), user.id, 10
        )  # the balance's last move
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        _, moves = store.account(conn, user.id, limit=1)
    assert [m["job_id"] for m in moves] == [first]


# Test-only: a ledger insert of kind TG_ARGV[0] waits, once its row is stamped, on advisory
# lock 4242; every move of a balance is logged in the order it happened.
_PAUSE_AND_LOG = """
CREATE FUNCTION pause_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind = TG_ARGV[0] THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER pause_ledger BEFORE INSERT ON credit_ledger
FOR EACH ROW EXECUTE FUNCTION pause_ledger({});
CREATE TABLE balance_moves (seq bigserial PRIMARY KEY, delta bigint NOT NULL);
CREATE FUNCTION log_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO balance_moves (delta) VALUES (NEW.balance - OLD.balance);
  RETURN NULL;
END $$;
CREATE TRIGGER log_balance AFTER UPDATE OF balance ON credit_accounts
FOR EACH ROW EXECUTE FUNCTION log_balance();
"""


@pytest.mark.parametrize("paused", ["debit", "refund"])
def test_a_debit_and_a_refund_racing_are_listed_in_the_order_they_moved_the_balance(
    database_url: str, configure: Configure, paused: str
) -> None:
    """A debit (or refund) stamped its ledger row, then waited for the account row while a
    refund (or debit) of the same user stamped, moved the balance and committed: the ledger
    listed the two in the other order than the balance moved (found by the diff review; a
    debit listed before the refund that paid for it reads as a balance below zero)."""
    user = new_user(database_url, balance=10 if paused == "debit" else 20)
    refunded = JobKey(CreditJobTable.IMAGE, new_job(database_url, user, cost=10))
    debited = JobKey(CreditJobTable.IMAGE, new_job(database_url, user, cost=7))
    with db.transaction() as conn:
        store.debit(conn, refunded, user.id, 10)
    waiting = (
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = %s"
    )

    def waits(event: str) -> bool:
        return int(rows(database_url, waiting, event)[0]["n"]) > 0

    def debit() -> None:  # as /start does it: the job row first, then the debit
        with contextlib.suppress(PaymentRequired), db.transaction() as conn:
            store.get_job(conn, debited, lock=True)
            store.debit(conn, debited, user.id, 7)

    def refund() -> None:
        finish_job(refunded, CreditJobStatus.FAILED)

    first, second = (debit, refund) if paused == "debit" else (refund, debit)
    with psycopg.connect(database_url, autocommit=True) as gate:
        gate.execute(sql.SQL(_PAUSE_AND_LOG).format(sql.Literal(paused)))
        gate.execute("SELECT pg_advisory_lock(4242)")
        with ThreadPoolExecutor(2) as pool:
            stamped = pool.submit(first)
            wait_for(lambda: waits("advisory") or stamped.done(), 10, f"the {paused}'s pause")
            racing = pool.submit(second)
            wait_for(lambda: waits("transactionid") or racing.done(), 10, "the other move")
            gate.execute("SELECT pg_advisory_unlock(4242)")
            stamped.result(timeout=10)
            racing.result(timeout=10)
    with db.transaction() as conn:
        _, moves = store.account(conn, user.id, limit=10)
    listed = [m["amount"] * (1 if m["kind"] == "refund" else -1) for m in reversed(moves)]
    moved = [r["delta"] for r in rows(database_url, "SELECT delta FROM balance_moves ORDER BY seq")]
    assert listed[1:] == moved  # after the first debit, made before the log began
