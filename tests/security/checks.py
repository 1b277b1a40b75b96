"""The matrix checks. Each returns the failures it found (empty: the endpoint passed), so a
test can also run one on a deliberately broken function and see it complain."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import jwt
import psycopg
from psycopg import sql
from werkzeug.test import TestResponse

from shared import dispatch, log
from shared.dispatch import RecordingDispatcher
from tests.security.credentials import CREDENTIALS, Call, Keys, Presented, legit, tenant_a
from tests.security.endpoints import Endpoint, send
from tests.security.requests import CPF, EMAIL, PASSWORD, PHONE
from tests.security.world import World, b_markers

REFUSED = frozenset({401, 403})
Snapshot = dict[str, tuple[int, str]]

# --- "nothing changed" ----------------------------------------------------------------------


def _tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Every ordinary table (partitions included) outside the system schemas."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2"
        )
    ]


def _filter(conn: psycopg.Connection[Any], schema: str, table: str, world: World) -> sql.Composable:
    """Which rows are B's: by tenant_id, else by user_id (credits), else all of the table."""
    cols = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = %s",
            [schema, table],
        )
    }
    if table == "tenants":
        return sql.SQL("WHERE t.id = {}").format(sql.Literal(str(world.b.id)))
    if "tenant_id" in cols:
        return sql.SQL("WHERE t.tenant_id = {}").format(sql.Literal(str(world.b.id)))
    if "user_id" in cols:
        return sql.SQL("WHERE t.user_id = {}").format(sql.Literal(str(world.b.admin)))
    return sql.SQL("")


def snapshot(world: World, *, only_b: bool = False) -> Snapshot:
    """Row count and a checksum of the contents of every table (or of B's rows in each)."""
    with psycopg.connect(world.url, autocommit=True) as conn:
        parts = [
            sql.SQL(
                "SELECT {name}, count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                " FROM {schema}.{table} AS t {where}"
            ).format(
                name=sql.Literal(f"{schema}.{table}"),
                schema=sql.Identifier(schema),
                table=sql.Identifier(table),
                where=_filter(conn, schema, table, world) if only_b else sql.SQL(""),
            )
            for schema, table in _tables(conn)
        ]
        rows = conn.execute(sql.SQL(" UNION ALL ").join(parts)).fetchall()
    return {r[0]: (int(r[1]), str(r[2])) for r in rows}


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """The tables whose rows differ (`table: count a -> b`, and whether only contents did)."""
    diffs = []
    for name in sorted(set(before) | set(after)):
        (count_a, sum_a), (count_b, sum_b) = before.get(name, (0, "")), after.get(name, (0, ""))
        if (count_a, sum_a) != (count_b, sum_b):
            same = ", contents" if count_a == count_b else ""
            diffs.append(f"{name}: {count_a} -> {count_b} rows{same}")
    return diffs


def _tasks() -> list[str]:
    """Cloud Tasks dispatched since the last look (the recording dispatcher)."""
    recorder = dispatch.get_dispatcher()
    if not isinstance(recorder, RecordingDispatcher):
        return []
    return [f"{t.function}{t.path or ''}" for t in recorder.take()]


def _call(endpoint: Endpoint, call: Call, presented: Presented) -> TestResponse:
    headers, query = presented.apply(call)
    return send(endpoint, call.method, body=call.body, query=query, headers=headers)


def _envelope_problem(response: TestResponse) -> str | None:
    """A refusal must be the error envelope and nothing else."""
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"body is not the error envelope: {response.get_data(as_text=True)[:200]!r}"
    return None


# --- matrix 1: forged and misused credentials -----------------------------------------------


def credential_failures(
    world: World, keys: Keys, endpoint: Endpoint, calls: list[Call], *, public: bool = False
) -> list[str]:
    """Every credential on every call: 401/403 with the envelope, nothing written, no task."""
    failures: list[str] = []
    _tasks()
    before = snapshot(world)
    for call in calls:
        for name, present in CREDENTIALS.items():
            presented = present(world, keys, call)
            if presented is None:
                continue  # the rightful principal of this call (the controls call it)
            where = f"{endpoint.id} [{call.label}] with {name}"
            response = _call(endpoint, call, presented)
            if not public and response.status_code not in REFUSED:
                failures.append(f"{where}: answered {response.status_code}, not 401/403")
            elif not public and (problem := _envelope_problem(response)):
                failures.append(f"{where}: {problem}")
            after = snapshot(world)
            if diff := changed(before, after):
                failures.append(f"{where}: changed {'; '.join(diff)}")
            if tasks := _tasks():
                failures.append(f"{where}: dispatched {tasks}")
            before = after
    return failures


def control_failures(world: World, endpoint: Endpoint, calls: list[Call]) -> list[str]:
    """The rightful caller gets past authentication (so a refusal above means something)."""
    failures = []
    for call in calls:
        response = _call(endpoint, call, legit(world, call))
        if response.status_code in (*REFUSED, 500):
            failures.append(
                f"{endpoint.id} [{call.label}] as its rightful caller: {response.status_code} "
                f"{response.get_data(as_text=True)[:300]}"
            )
    return failures


# --- matrix 2: tenant A's principal with tenant B's ids -------------------------------------


def foreign_failures(world: World, endpoint: Endpoint, calls: list[Call]) -> list[str]:
    """A's principal on B's ids: the expected refusal, no B data, B's rows unchanged."""
    failures: list[str] = []
    markers = b_markers(world)
    _tasks()
    for call in calls:
        where = f"{endpoint.id} [{call.label}]"
        refused = not (call.expect & {200, 201, 202})
        before = snapshot(world, only_b=not refused)
        response = _call(endpoint, call, tenant_a(world, call))
        text = response.get_data(as_text=True)
        if response.status_code not in call.expect:
            failures.append(
                f"{where}: answered {response.status_code}, not one of "
                f"{sorted(call.expect)}: {text[:200]}"
            )
        shown = [name for name, value in markers.items() if value in text]
        if leaked := [name for name in shown if name not in call.echoes]:
            failures.append(f"{where}: the response shows {', '.join(leaked)}")
        if diff := changed(before, snapshot(world, only_b=not refused)):
            failures.append(f"{where}: changed {'; '.join(diff)}")
        if refused and (tasks := _tasks()):
            failures.append(f"{where}: dispatched {tasks}")
        _tasks()
    return failures


# --- matrix 3: canary secrets and personal data never logged --------------------------------

REQUEST_CANARIES = {
    "password": PASSWORD,
    "email": EMAIL,
    "cpf": CPF,
    "phone": PHONE,
    "provider key": "canary-provider-key-3e1f0a",
    "cookie": "canary-session-cookie-8b2c",
}


_MALFORMED = f'{{"password": "{PASSWORD}", "email": "{EMAIL}", "cpf": "{CPF}", '.encode()


def canary_jwt(world: World) -> str:
    """A JWT (signed with the wrong key) whose claims are personal data."""
    return jwt.encode(
        {"sub": str(world.a.admin), "email": EMAIL, "phone": PHONE, "cpf": CPF},
        "canary-jwt-signing-key-0123456789-abcdef",
        algorithm="HS256",
    )


def _with_canaries(
    call: Call, presented: Presented, world: World
) -> list[tuple[str, Call, Presented]]:
    """The call as its rightful caller sends it, plus canaries in headers, query and body;
    and the call with a canary where the credential goes."""
    headers = {
        **call.headers,
        "X-Api-Key": REQUEST_CANARIES["provider key"],
        "apikey": canary_jwt(world),
        "Cookie": f"session={REQUEST_CANARIES['cookie']}",
        "X-User-Email": EMAIL,
        "Function-Execution-Id": f"{EMAIL} {PASSWORD}",  # the platform sets it; a caller may too
        "X-Forwarded-For": PHONE,
        "User-Agent": f"canary-agent {CPF}",
    }
    query = {**call.query, "password": PASSWORD, "email": EMAIL, "cpf": CPF}
    body = (
        {**call.body, "password": PASSWORD, "cpf": CPF}
        if isinstance(call.body, dict)
        else call.body
    )
    loud = replace(call, headers=headers)
    return [
        ("canary headers", loud, presented),
        ("canary query and body fields", replace(loud, query=query, body=body), presented),
        (
            "a canary JWT as the credential",
            loud,
            Presented({"Authorization": f"Bearer {canary_jwt(world)}"}, {"sig": PASSWORD}),
        ),
        ("a malformed body quoting canaries", replace(loud, body=_MALFORMED), presented),
        (
            "a password as the credential",
            loud,
            Presented({"Authorization": f"Bearer {PASSWORD}"}, {"sig": CPF}),
        ),
    ]


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line any logger writes at INFO and above, as JSON lines (syncq's format)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(log.JsonFormatter())
    root, ours = logging.getLogger(), logging.getLogger("syncq")
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    ours.addHandler(handler)
    try:
        yield buffer
    finally:
        ours.removeHandler(handler)
        root.removeHandler(handler)
        root.setLevel(level)


def log_failures(
    world: World, endpoint: Endpoint, calls: list[Call], pii_calls: list[Call]
) -> list[str]:
    """Canaries in every request, rightful or not: none may appear in any log line."""
    canaries = {**REQUEST_CANARIES, "canary jwt": canary_jwt(world), **world.canaries()}
    failures: list[str] = []
    for call in [*calls, *pii_calls]:
        variants = [("as sent", call, legit(world, call))] if call in pii_calls else []
        variants += _with_canaries(call, legit(world, call), world)
        for label, variant, presented in variants:
            with captured_logs() as buffer:
                _call(endpoint, variant, presented)
            written = buffer.getvalue().splitlines()
            for name, value in canaries.items():
                line = next((line for line in written if value in line), None)
                if line is not None:
                    failures.append(
                        f"{endpoint.id} [{call.label}, {label}]: a log line holds the {name}: "
                        f"{line[:300]}"
                    )
    return failures
