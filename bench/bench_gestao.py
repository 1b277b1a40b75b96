"""Lead export to Gestão Scouter: the seed's design vs syncq's runner vs a direct COPY.

    .venv/bin/python -m bench.bench_gestao [--leads N] [--batch B] [--in-flight P]
        [--repeat R] [--latency-ms MS] [--json results.json]

One PostgreSQL server (DATABASE_URL, else an embedded PostgreSQL in a temporary folder)
holds the local database (migrated, N seeded leads) and the remote project's database,
served by the PostgREST emulator in its own process (`python -m infra.emulators.postgrest`).
Every contender starts from an empty remote table and must leave it identical to the
mapped source (checksum), then the table is emptied again.

* seed design: what the edge function did — per day, pages of 50 leads by OFFSET, mapped
  row by row, one upsert per page (as supabase-js sends it, with `columns=`), the job's
  status read before each page (to honour a pause) and its counters updated after it.
* syncq: the real runner (`shared.gestao.runner`): keyset pages built as JSON by Postgres,
  B leads per upsert, P upserts in flight, checkpoint per batch; also with the shipped
  defaults (the batch size adapts from GESTAO_SCOUTER_BATCH_SIZE, 1000; see
  shared/gestao/batches.BatchSizer).
* COPY: `COPY (SELECT mapped) TO STDOUT` piped into `COPY leads FROM STDIN` on the remote
  database, no HTTP at all: the limit.

`--latency-ms` delays every answer of the remote, as a network round trip would (the
default 0 is loopback, where sequential small batches cost least). Each run's CPU is
split into core-seconds of this process (the runner), the emulator and the rest of the
machine (PostgreSQL, mostly), read from /proc on Linux. Peak Python memory of
the runner (tracemalloc) is measured at N/10 and N leads. Last, the two JSON steps of an
export are timed alone (the local body building, the remote's upsert): the floor under
syncq's time on a machine whose cores they share.
Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bench import _pg
from infra import migrate
from infra.emulators.postgrest import make_key
from infra.emulators.postgrest.schema_cache import load_schema_cache
from infra.emulators.postgrest.state import DEFAULT_PROJECT_REF
from infra.emulators.postgrest.writes import Prefer, RawBody, insert_statement, plan_insert
from infra.local import demo
from shared.auth import SERVICE
from shared.gestao.mapping import DEFAULT_MAPPING
from shared.gestao.models import ExportAction, ExportRequest
from shared.gestao.runner import run_job
from shared.gestao.service import export_action
from shared.secrets import env_var, secret_name
from shared.sqlfiles import query

SECRET = "bench-gestao-scouter-jwt-secret-0123456789abcdef"
PAGE = 50
REMOTE_COLS = [*DEFAULT_MAPPING.values(), "sync_source"]
SEED_PAGE = """
SELECT * FROM leads
WHERE tenant_id = %(tenant_id)s AND criado >= %(day)s::date AND criado < %(day)s::date + 1
ORDER BY criado, id LIMIT %(limit)s OFFSET %(offset)s
"""
SEED_DAYS = "SELECT DISTINCT criado::date AS day FROM leads WHERE tenant_id = %s ORDER BY 1"
SEED_STATUS = "SELECT status FROM gestao_scouter_export_jobs WHERE id = %s"
SEED_PROGRESS = """
UPDATE gestao_scouter_export_jobs
SET exported_leads = exported_leads + %(n)s, processing_date = %(day)s, updated_at = now()
WHERE id = %(id)s
"""


@dataclass
class Run:
    contender: str
    leads: int
    batch: str
    seconds: float
    checksum_ok: bool
    cpu: dict[str, float] | None = None  # core-seconds: runner, emulator, rest of the machine

    @property
    def rate(self) -> float:
        return self.leads / self.seconds if self.seconds else 0.0


@dataclass
class Setup:
    local: str
    remote_db: str
    remote_url: str
    tenants: dict[str, uuid.UUID]  # label -> tenant id
    counts: dict[str, int]
    emulator_pid: int = 0


# -- setup ----------------------------------------------------------------------------------


@contextmanager
def emulator(remote_db: str, latency_ms: int = 0) -> Iterator[tuple[str, int]]:
    """The remote project in its own process; yields its base URL and pid. `latency_ms`
    delays every answer (a network round trip to a remote project; loopback has none)."""
    argv = [sys.executable, "-m", "infra.emulators.postgrest", "--port", "0",
            "--database-url", remote_db, "--jwt-secret", SECRET,
            "--latency-ms", str(latency_ms)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if " on " not in line:
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield line.split(" on ", 1)[1].strip().removesuffix("/rest/v1"), proc.pid
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout:
            proc.stdout.close()


def seed_local(url: str, remote_url: str, counts: dict[str, int]) -> dict[str, uuid.UUID]:
    """Migrate, one tenant per size, its integration and its leads."""
    migrate.migrate(url)
    tenants: dict[str, uuid.UUID] = {}
    with psycopg.connect(url) as conn:
        for label, count in counts.items():
            tid = uuid.uuid4()
            conn.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)",
                         [tid, label, label])  # fmt: skip
            conn.execute(
                "INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)"
                " VALUES (%s, 'gestao-scouter', true, %s)",
                [tid, Jsonb({"project_url": remote_url})],
            )
            demo.seed_leads(conn, tid, count, date(2024, 1, 1), 90)
            tenants[label] = tid
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return tenants


def configure(setup: Setup, **extra: str) -> None:
    """Settings of the in-process runner (read by shared.settings)."""
    from shared import db
    from shared.settings import reload_settings

    key = make_key(SECRET, "service_role", DEFAULT_PROJECT_REF)
    env = {
        "DATABASE_URL": setup.local, "JWT_SECRET": SECRET, "DISPATCHER": "disabled",
        "SECRET_BACKEND": "env", "GESTAO_SCOUTER_BUDGET_S": "3600", "DB_POOL_MAX": "6",
        **{env_var(secret_name(label, "gestao-scouter", "service_key")): key
           for label in setup.tenants},
        **extra,
    }  # fmt: skip
    os.environ.update(env)
    reload_settings()
    db.close_pool()


# -- checks ---------------------------------------------------------------------------------


def expected_checksum(setup: Setup, label: str) -> str:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in DEFAULT_MAPPING)
    stmt = sql.SQL(
        "SELECT md5(string_agg(row({}, 'tabuladormax'::text)::text, '|' ORDER BY id)) FROM leads"
        " WHERE tenant_id = %s"
    ).format(cols)
    with psycopg.connect(setup.local) as conn:
        row = conn.execute(stmt, [setup.tenants[label]]).fetchone()
    return str(row[0]) if row else ""


def remote_checksum_and_reset(setup: Setup) -> str:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in REMOTE_COLS)
    stmt = sql.SQL("SELECT md5(string_agg(row({})::text, '|' ORDER BY id)) FROM public.leads")
    with psycopg.connect(setup.remote_db, autocommit=True) as conn:
        row = conn.execute(stmt.format(cols)).fetchone()
        conn.execute("TRUNCATE public.leads")
    with psycopg.connect(setup.local, autocommit=True) as conn:
        conn.execute("DELETE FROM gestao_scouter_export_jobs")
    return str(row[0]) if row else ""


# -- contenders -------------------------------------------------------------------------------


def seed_design(setup: Setup, label: str) -> None:
    """Per day, OFFSET pages of 50, mapped in Python, one upsert and one counter update each."""
    tid = setup.tenants[label]
    key = make_key(SECRET, "service_role", DEFAULT_PROJECT_REF)
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Prefer": "resolution=merge-duplicates, return=minimal"}  # fmt: skip
    with (
        httpx.Client(base_url=f"{setup.remote_url}/rest/v1", timeout=30) as client,
        psycopg.connect(setup.local, row_factory=dict_row) as conn,
    ):
        job = conn.execute(
            query("gestao", "insert_job"),
            {"tenant_id": tid, "start_date": None, "end_date": None, "total": 0,
             "field_mappings": Jsonb(DEFAULT_MAPPING), "batch_size": PAGE, "created_by": None},
        ).fetchone()  # fmt: skip
        assert job is not None
        for day in [r["day"] for r in conn.execute(SEED_DAYS, [tid]).fetchall()]:
            offset = 0
            page = {"tenant_id": tid, "day": day, "limit": PAGE}
            while rows := conn.execute(SEED_PAGE, {**page, "offset": offset}).fetchall():
                current = conn.execute(SEED_STATUS, [job["id"]]).fetchone()
                if current is None or current["status"] == "paused":
                    return
                payload = [
                    {**{remote: row[local] for local, remote in DEFAULT_MAPPING.items()},
                     "sync_source": "tabuladormax"} for row in rows
                ]  # fmt: skip
                body = json.dumps(payload, default=str)
                params = {"on_conflict": "id", "columns": ",".join(REMOTE_COLS)}
                client.post(
                    "/leads", params=params, content=body, headers=headers
                ).raise_for_status()
                conn.execute(SEED_PROGRESS, {"n": len(rows), "day": day, "id": job["id"]})
                conn.commit()
                offset += PAGE


def syncq(setup: Setup, label: str) -> dict[str, Any]:
    """The real runner, in this process, run to completion (one long budget). Its modules
    are imported with this one's: a deployed function has them loaded before a run too."""
    tid = setup.tenants[label]
    job = export_action(SERVICE, ExportRequest(tenant_id=tid, action=ExportAction.START))
    while job["status"] in ("pending", "running"):
        job = run_job(uuid.UUID(job["id"]), tid)
    if job["status"] != "completed":
        raise RuntimeError(f"export ended {job['status']}: {job.get('pause_reason')}")
    return job


def copy(setup: Setup, label: str) -> None:
    """Local SELECT (mapped) piped into the remote's COPY FROM STDIN."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in DEFAULT_MAPPING)
    source = sql.SQL(
        "COPY (SELECT {}, 'tabuladormax' FROM leads WHERE tenant_id = {} ORDER BY criado, id)"
        " TO STDOUT"
    ).format(cols, sql.Literal(str(setup.tenants[label])))
    target = sql.SQL("COPY public.leads ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in REMOTE_COLS)
    )
    with psycopg.connect(setup.local) as src, psycopg.connect(setup.remote_db) as dst:
        with src.cursor().copy(source) as out, dst.cursor().copy(target) as into:
            for chunk in out:
                into.write(chunk)
        dst.commit()


def floor(setup: Setup, label: str, batch: int) -> dict[str, float]:
    """The two JSON steps of an export alone, one connection each, nothing else running:
    building every batch body locally, then the remote's upsert of those bodies as PostgREST
    runs it (json_to_recordset ... ON CONFLICT DO UPDATE, as service_role)."""
    from shared.gestao.batches import START, batch_statement, next_batch

    params = {"tenant_id": setup.tenants[label], "from_ts": None, "to_ts": None, "limit": batch}
    bodies: list[bytes] = []
    started = time.perf_counter()
    with psycopg.connect(setup.local, row_factory=dict_row) as conn:
        stmt, cursor = batch_statement(DEFAULT_MAPPING), START
        while (page := next_batch(conn, stmt, params, cursor)).last is not None:
            bodies.append(page.body)
            cursor = page.last
    local_s = time.perf_counter() - started
    args = {"columns": ",".join(REMOTE_COLS), "on_conflict": "id"}
    prefer = Prefer.parse(["resolution=merge-duplicates, return=minimal"])
    with psycopg.connect(setup.remote_db, autocommit=True, row_factory=dict_row) as conn:
        table = load_schema_cache(conn).table("leads")
        assert table is not None and bodies
        # The statement the emulator builds for the runner's POST (the same for every body).
        plan = plan_insert(table, bodies[0], args, prefer, need_rows=False)
        upsert = insert_statement(table, plan, plan.groups[0], prefer)
        started = time.perf_counter()
        for body in bodies:
            with conn.transaction():
                conn.execute("SET LOCAL ROLE service_role")
                conn.execute(upsert, {"body": RawBody(body)})
        remote_s = time.perf_counter() - started
    remote_checksum_and_reset(setup)
    return {"local_json_s": local_s, "remote_upsert_s": remote_s}


# -- running --------------------------------------------------------------------------------------


def _cpu_now(emulator_pid: int) -> dict[str, float] | None:
    """Core-seconds so far: this process, the emulator, the whole machine (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{emulator_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            cpu = [int(v) for v in f.readline().split()[1:]]
    except (OSError, IndexError, ValueError):
        return None
    mine = os.times()
    # /proc/stat: user nice system idle iowait irq softirq steal ...; busy = all but idle/iowait
    busy = sum(cpu) - cpu[3] - cpu[4]
    return {
        "runner": mine.user + mine.system,
        "emulator": (int(fields[11]) + int(fields[12])) / tick,
        "machine": busy / tick,
    }


def _cpu_used(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    used = {k: after[k] - before[k] for k in before}
    # The rest of the machine: PostgreSQL (both databases) and whatever else ran meanwhile.
    used["rest"] = max(used.pop("machine") - used["runner"] - used["emulator"], 0.0)
    return used


def timed(setup: Setup, name: str, label: str, batch: str, fn: Callable[[], Any]) -> Run:
    before = _cpu_now(setup.emulator_pid)
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    cpu = _cpu_used(before, _cpu_now(setup.emulator_pid))
    ok = remote_checksum_and_reset(setup) == expected_checksum(setup, label)
    return Run(name, setup.counts[label], batch, seconds, ok, cpu)


def peak_memory_mib(setup: Setup, label: str) -> float:
    """Peak Python allocation of one runner export (tracemalloc), in MiB."""
    tracemalloc.start()
    try:
        syncq(setup, label)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    remote_checksum_and_reset(setup)
    return peak / 2**20


TUNING = ("GESTAO_SCOUTER_BATCH_SIZE", "GESTAO_SCOUTER_MAX_BATCH_SIZE", "GESTAO_SCOUTER_IN_FLIGHT")


def contenders(setup: Setup, args: argparse.Namespace) -> dict[str, Callable[[], Run]]:
    big = "big"
    # A fixed batch (no adapting: the maximum is the batch), and syncq as it ships.
    fast = {"GESTAO_SCOUTER_BATCH_SIZE": str(args.batch),
            "GESTAO_SCOUTER_MAX_BATCH_SIZE": str(args.batch),
            "GESTAO_SCOUTER_IN_FLIGHT": str(args.in_flight)}  # fmt: skip

    def ours(env: dict[str, str], name: str, batch: str) -> Callable[[], Run]:
        def go() -> Run:
            for variable in TUNING:  # each contender from the defaults, then its own
                os.environ.pop(variable, None)
            configure(setup, **env)
            return timed(setup, name, big, batch, lambda: syncq(setup, big))

        return go

    return {
        "seed design": lambda: timed(
            setup, "seed design", big, "50", lambda: seed_design(setup, big)
        ),
        "syncq": ours(fast, "syncq", f"{args.batch} x{args.in_flight}"),
        "syncq (defaults)": ours({}, "syncq (defaults)", "adaptive"),
        "COPY": lambda: timed(setup, "COPY", big, "-", lambda: copy(setup, big)),
    }


def report(runs: dict[str, list[Run]], memory: dict[int, float]) -> dict[str, Any]:
    best = {name: sorted(r, key=lambda x: x.seconds)[len(r) // 2] for name, r in runs.items()}
    seed_rate, copy_rate = best["seed design"].rate, best["COPY"].rate
    headers = ("contender", "leads", "batch", "seconds", "leads/s", "x seed", "x COPY", "same")
    table = [
        (r.contender, str(r.leads), r.batch, f"{r.seconds:.2f}", f"{r.rate:,.0f}",
         f"{r.rate / seed_rate:.1f}", f"{r.rate / copy_rate:.2f}", "yes" if r.checksum_ok else "NO")
        for r in best.values()
    ]  # fmt: skip
    print(_pg.render_table(headers, table))
    if all(r.cpu for r in best.values()):
        print("\nCPU of those runs, core-seconds (rest: PostgreSQL, local and remote, and anything"
              " else on the machine; busy: all of it / wall time):")  # fmt: skip
        cpu_headers = ("contender", "runner", "emulator", "rest", "busy cores")
        cpu_rows = [
            (r.contender, *(f"{r.cpu[k]:.2f}" for k in ("runner", "emulator", "rest")),
             f"{sum(r.cpu.values()) / r.seconds:.2f} of {os.cpu_count()}")
            for r in best.values() if r.cpu
        ]  # fmt: skip
        print(_pg.render_table(cpu_headers, cpu_rows))
    print("\nrunner peak Python memory (tracemalloc): "
          + ", ".join(f"{n:,} leads {m:.1f} MiB" for n, m in memory.items()))  # fmt: skip
    ours, shipped = best["syncq"].rate, best["syncq (defaults)"].rate
    print(f"targets: syncq >= 10x seed design: {shipped / seed_rate:.1f}x at defaults,"
          f" {ours / seed_rate:.1f}x fixed batch;"
          f" >= 0.25x COPY: {ours / copy_rate:.2f}x")  # fmt: skip
    by_repeat = repeat_ratios(runs)
    for name, ratios in by_repeat.items():
        print(f"x seed, repeat by repeat, {name}: " + ", ".join(f"{x:.1f}" for x in ratios))
    return {
        "runs": {n: [r.__dict__ | {"rate": r.rate} for r in rs] for n, rs in runs.items()},
        "median": {n: r.__dict__ | {"rate": r.rate} for n, r in best.items()},
        "x_seed_by_repeat": by_repeat,
        "peak_memory_mib": memory,
    }


def repeat_ratios(runs: dict[str, list[Run]]) -> dict[str, list[float]]:
    """Each syncq run against the seed's run of the same repeat (they ran one after the
    other, so they share the machine's mood of that moment)."""
    seed = runs["seed design"]
    return {
        name: [s.seconds / r.seconds for s, r in zip(seed, rs, strict=True)]
        for name, rs in runs.items()
        if name.startswith("syncq")
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_gestao", description=__doc__)
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=2000, help="syncq's batch size")
    p.add_argument("--in-flight", type=int, default=3, help="syncq's pipelined upserts")
    p.add_argument("--repeat", type=int, default=1, help="runs per contender; median shown")
    p.add_argument("--latency-ms", type=int, default=0,
                   help="added to every remote answer, like a network round trip")  # fmt: skip
    p.add_argument("--json", metavar="PATH")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = {"big": args.leads, "small": max(1, args.leads // 10)}
    with (
        _pg.server() as server,
        _pg.fresh_database(server, "gs_local") as local,
        _pg.fresh_database(server, "gs_remote") as remote_db,
        emulator(remote_db, args.latency_ms) as (remote_url, emulator_pid),
    ):
        setup = Setup(local, remote_db, remote_url, {}, counts, emulator_pid)
        setup.tenants = seed_local(local, remote_url, counts)
        print(f"{_pg.server_version(server)}; {args.leads:,} leads; repeat {args.repeat};"
              f" remote latency {args.latency_ms} ms")  # fmt: skip
        runs: dict[str, list[Run]] = {}
        for _ in range(args.repeat):
            for name, go in contenders(setup, args).items():
                runs.setdefault(name, []).append(go())
        configure(setup, GESTAO_SCOUTER_BATCH_SIZE=str(args.batch),
                  GESTAO_SCOUTER_IN_FLIGHT=str(args.in_flight))  # fmt: skip
        memory = {counts[label]: peak_memory_mib(setup, label) for label in ("small", "big")}
        result = report(runs, memory)
        result["floor"] = steps = floor(setup, "big", args.batch)
        print(f"the JSON steps alone (batch {args.batch}, one connection each): building the"
              f" bodies locally {steps['local_json_s']:.2f} s, the remote's upsert"
              f" {steps['remote_upsert_s']:.2f} s")  # fmt: skip
        from shared import db

        db.close_pool()
    if args.json:
        _pg.write_json(args.json, result)
    return 0 if all(r.checksum_ok for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
