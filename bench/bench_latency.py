"""Click -> running latency on the local stack (gateway + Cloud Tasks emulator + Acessórias).

    .venv/bin/python -m bench.bench_latency [--clicks 50] [--warmup 3] [--companies 5]
        [--json results.json]

The stack is wired the way `make run` wires it (infra/local/stack.py): a fresh migrated
database (DATABASE_URL's server, else an embedded PostgreSQL), the demo tenants, the
Acessórias emulator with a tiny dataset, gcloud-tasks-emulator from .venv-tasks, and the
gateway serving every function, with DISPATCHER=cloudtasks. Each click is a real
run-integration call by the demo admin; the job then travels Cloud Task -> emulator ->
process-integration-job -> claim. Clicks are sequential: each waits for its job to finish
(one live job per tenant and provider) so every click meets an idle system.

Measured per click: the 202 response time, response -> the job's started_at (the claim's
timestamp in the database), and click -> the `running` NOTIFY seen by a listener. Note the
emulator polls its queue every 100 ms, which dominates the local figure. Not a test.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg.rows import dict_row
from werkzeug.serving import make_server

from bench import _pg
from infra import migrate
from infra.emulators._common import start_in_thread
from infra.emulators.acessorias import AcessoriasState, create_app
from infra.local import demo, stack
from infra.local.supervise import free_port

JOB_TIMES = "SELECT started_at, finished_at, status FROM integration_jobs WHERE id = %s"
FINAL = {"success", "error", "canceled"}


@dataclass(frozen=True)
class Sample:
    """One click's timings, in milliseconds."""

    response_ms: float
    response_to_started_ms: float
    click_to_running_ms: float
    click_to_final_ms: float
    status: str


@dataclass(frozen=True)
class Stack:
    base_url: str
    database_url: str
    token: str
    tenant_id: UUID


def wait_port(port: int, timeout_s: float = 30.0) -> None:
    """Wait until something accepts TCP connections on the loopback port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def acessorias_emulator(companies: int) -> Iterator[str]:
    """The Acessórias emulator in a thread, a tiny dataset per demo tenant, no rate limit."""
    state = AcessoriasState(seed=7)
    state.knobs.update({"rate_limit_per_min": 0})
    for tenant in demo.TENANTS:
        state.seed_token(demo.demo_secret(tenant, "acessorias", "token"), companies)
    handle = start_in_thread(create_app(state))
    try:
        yield handle.url
    finally:
        handle.stop()


@contextmanager
def tasks_emulator(port: int) -> Iterator[None]:
    """gcloud-tasks-emulator from its own venv, with the queue the dispatcher uses."""
    from shared.settings import get_settings

    s = get_settings().tasks
    queue = f"projects/{s.gcp_project}/locations/{s.gcp_location}/queues/{s.tasks_queue}"
    argv = [str(stack.TASKS_BIN), "start", "-p", str(port), "-q", "-d", queue, "-r", "20"]
    proc = subprocess.Popen(  # noqa: S603 - our own emulator binary, fixed arguments
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def gateway() -> Iterator[int]:
    """The gateway (every function) served by werkzeug in a thread; yields its port."""
    from infra.local.gateway import build

    server = make_server("127.0.0.1", 0, build(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


class Listener:
    """LISTEN integration_jobs in a thread; remembers when each (job, status) was first seen."""

    def __init__(self, database_url: str) -> None:
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._conn.execute("LISTEN integration_jobs")
        self._seen: dict[tuple[str, str], float] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import json

        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                at = time.perf_counter()
                row = json.loads(note.payload)
                with self._cond:
                    self._seen.setdefault((str(row["id"]), str(row["status"])), at)
                    self._cond.notify_all()

    def wait(self, job_id: str, statuses: set[str], timeout_s: float) -> tuple[str, float]:
        """The first of `statuses` seen for the job, and when (perf_counter)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for status in statuses:
                    if (job_id, status) in self._seen:
                        return status, self._seen[(job_id, status)]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job_id} never reached {sorted(statuses)}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()


def click(client: httpx.Client, st: Stack, listener: Listener, timeout_s: float) -> Sample:
    """One run-integration call, then wait for running and for the final state."""
    started = time.perf_counter()
    response = client.post(
        f"{st.base_url}/run-integration",
        json={"tenant_id": str(st.tenant_id), "provider_slug": "acessorias"},
        headers={"Authorization": f"Bearer {st.token}"},
    )
    answered, answered_wall = time.perf_counter(), time.time()
    if response.status_code != 202:
        raise RuntimeError(f"run-integration answered {response.status_code}: {response.text}")
    job_id = str(response.json()["job_id"])
    _, running_at = listener.wait(job_id, {"running"}, timeout_s)
    status, final_at = listener.wait(job_id, FINAL, timeout_s)
    with psycopg.connect(st.database_url, row_factory=dict_row) as conn:
        row = conn.execute(JOB_TIMES, [job_id]).fetchone()
    assert row is not None and row["started_at"] is not None
    return Sample(
        response_ms=(answered - started) * 1000,
        response_to_started_ms=(row["started_at"].timestamp() - answered_wall) * 1000,
        click_to_running_ms=(running_at - started) * 1000,
        click_to_final_ms=(final_at - started) * 1000,
        status=status,
    )


def configure_functions(database_url: str, gateway_port: int, tasks_port: int) -> None:
    """The functions' environment exactly as the local stack builds it (stack.function_env)."""
    import os
    import secrets as pysecrets

    from shared import db, dispatch, log, secrets
    from shared.settings import reload_settings

    ports = stack.Ports(gateway=gateway_port, tasks=tasks_port)
    ctx = stack.StackContext(ports, database_url)
    os.environ.update(stack.function_env(ctx, pysecrets.token_urlsafe(48)))
    os.environ["ACESSORIAS_EMPTY_RECHECK_S"] = "0.01"  # else each job idles 3 + 6 s at the end
    reload_settings()
    db.close_pool()
    dispatch.reset_dispatcher()
    secrets.reset_store()
    log.configure()
    logging.getLogger("syncq").setLevel(logging.WARNING)  # configure() is idempotent
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@contextmanager
def local_stack(companies: int) -> Iterator[Stack]:
    """Database, demo tenants, emulators, task emulator and gateway, torn down afterwards."""
    from shared import db
    from shared.auth import mint_token

    with ExitStack() as es:
        server_url = es.enter_context(_pg.server())
        database_url = es.enter_context(_pg.fresh_database(server_url, "latency"))
        migrate.migrate(database_url)
        emulator_url = es.enter_context(acessorias_emulator(companies))
        demo.seed(database_url, {"acessorias": int(emulator_url.rsplit(":", 1)[1])})
        gateway_port = es.enter_context(gateway())
        tasks_port = free_port()
        configure_functions(database_url, gateway_port, tasks_port)
        es.callback(db.close_pool)
        es.enter_context(tasks_emulator(tasks_port))
        tenant = demo.TENANTS[0]
        yield Stack(
            base_url=f"http://127.0.0.1:{gateway_port}/functions/v1",
            database_url=database_url,
            token=mint_token(user_id=tenant.admin),
            tenant_id=tenant.id,
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


METRICS = {
    "click -> 202 response": "response_ms",
    "202 response -> started_at": "response_to_started_ms",
    "click -> running (NOTIFY seen)": "click_to_running_ms",
    "click -> finished (NOTIFY seen)": "click_to_final_ms",
}


def summarize(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """p50 / p90 / p99 / max per metric, in ms."""
    out: dict[str, dict[str, float]] = {}
    for label, attr in METRICS.items():
        values = [getattr(s, attr) for s in samples]
        out[label] = {
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": max(values),
            "mean": statistics.fmean(values),
        }
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.bench_latency", description=__doc__)
    p.add_argument("--clicks", type=int, default=50, help="measured clicks")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured clicks first")
    p.add_argument("--companies", type=int, default=5, help="Acessórias companies per tenant")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait per job")
    p.add_argument(
        "--max-gap-ms", type=float, default=250.0, help="random idle pause before each click"
    )
    p.add_argument("--json", metavar="PATH", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.clicks < 1 or args.warmup < 0 or args.companies < 0:
        p.error("--clicks must be >= 1, --warmup and --companies >= 0")
    if args.max_gap_ms < 0:
        p.error("--max-gap-ms must be >= 0")
    return args


def measure(args: argparse.Namespace) -> tuple[str, list[Sample]]:
    """Start the stack and click `warmup + clicks` times, one after the other."""
    samples: list[Sample] = []
    rng = random.Random(42)
    with local_stack(args.companies) as st, httpx.Client(timeout=30.0) as client:
        version = _pg.server_version(st.database_url)
        listener = Listener(st.database_url)
        try:
            for i in range(args.warmup + args.clicks):
                # Clicks at random moments, not in step with the emulator's 100 ms poll.
                time.sleep(rng.uniform(0, args.max_gap_ms / 1000))
                sample = click(client, st, listener, args.timeout)
                if sample.status != "success":
                    raise RuntimeError(f"click {i} ended {sample.status}")
                if i >= args.warmup:
                    samples.append(sample)
        finally:
            listener.close()
    return version, samples


def main(argv: Sequence[str] | None = None) -> int:
    """Run the latency benchmark and print p50/p99."""
    args = parse_args(argv)
    version, samples = measure(args)
    summary = summarize(samples)
    headers = ["latency (ms)", "p50", "p90", "p99", "max"]
    rows = [
        [label, *(f"{s[k]:.1f}" for k in ("p50", "p90", "p99", "max"))]
        for label, s in summary.items()
    ]
    print(f"\nclick -> running on the local stack ({version}), {len(samples)} sequential clicks\n")
    print(_pg.render_table(headers, rows))
    print("\n(the Cloud Tasks emulator polls its queue every 100 ms; p99 of 50 is ~the max)")
    if args.json:
        payload: dict[str, Any] = {
            "server": version,
            "args": vars(args),
            "summary_ms": summary,
            "samples": [asdict(s) for s in samples],
        }
        _pg.write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
