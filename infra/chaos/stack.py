"""The local stack's real processes, on free ports, with a worker that can be killed.

What `make run` starts (`infra/local/stack.py`), started apart for a chaos run: the Cloud
Tasks emulator (from .venv-tasks), the three provider emulators, the PostgREST emulator
(the remote Gestão Scouter), the RunningHub emulator and the gateway serving every
function to callers (clicks, exports, credits). A second gateway process is the worker:
Cloud Tasks deliveries (through the delivery proxy) and the sweep reach it, so killing it
kills whatever job, sweep or export runner it was running. Every process logs to its own
file in the run's folder; the worker's incarnations to worker-1.log, worker-2.log, ...
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.chaos.proxy import DeliveryProxy
from infra.local import supervise
from infra.local.stack import TASKS_BIN, TASKS_QUEUE
from infra.local.supervise import Child, Children, StackFailed, free_ports

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = ("acessorias", "onecode", "bomcontrole")
READY_S = 90.0
RUNNINGHUB_KEY = "chaos-runninghub-api-key"


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Plan:
    """What the stack serves: its databases, the credentials its emulators know, and the
    settings the functions run with (the chaos run's tuning and the tenants' secrets)."""

    database_url: str
    remote_database_url: str
    jwt_secret: str
    remote_key: str
    tokens: Mapping[str, list[str]]  # provider -> credentials its emulator is seeded with
    records: int
    settings: Mapping[str, str]


@dataclass
class Incarnation:
    """One life of the worker process."""

    child: Child
    started: float
    killed: float | None = None


@dataclass(frozen=True)
class Ports:
    tasks: int
    gateway: int
    worker: int
    gestao: int
    runninghub: int
    providers: dict[str, int]

    @classmethod
    def pick(cls) -> Ports:
        """Ports from the OS for every process of the stack."""
        tasks, gateway, worker, gestao, runninghub, *rest = free_ports(5 + len(PROVIDERS))
        return cls(
            tasks, gateway, worker, gestao, runninghub, dict(zip(PROVIDERS, rest, strict=True))
        )


class ChaosStack:
    """Start, kill and stop the processes of one chaos run (see module doc)."""

    def __init__(self, plan: Plan, folder: Path, *, deliveries: int = 10) -> None:
        self.plan = plan
        self.folder = folder
        self.ports = Ports.pick()
        self.children = Children(folder, ROOT)
        self.incarnations: list[Incarnation] = []
        self._worker_lock = threading.Lock()
        self.proxy = DeliveryProxy(self.url(self.ports.worker, ""), concurrency=deliveries)
        self.proxy_url = ""

    def url(self, port: int, prefix: str = "/functions/v1") -> str:
        return f"http://127.0.0.1:{port}{prefix}"

    @property
    def gateway(self) -> str:
        return self.url(self.ports.gateway)

    @property
    def worker(self) -> str:
        return self.url(self.ports.worker)

    def emulator(self, name: str) -> str:
        named = {"gestao-scouter": self.ports.gestao, "runninghub": self.ports.runninghub}
        port = named.get(name) or self.ports.providers[name]
        return self.url(port, "")

    # -- starting and stopping ---------------------------------------------------------------
    def start(self) -> None:
        """Every process, then wait until each listens and both gateways are healthy."""
        self.proxy_url = self.proxy.start()
        base_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        tasks = [str(TASKS_BIN), "start", "-p", str(self.ports.tasks), "-q", "-d", TASKS_QUEUE]
        self.children.start("tasks-emulator", [*tasks, "-r", "5"], base_env)
        for name, argv in self._emulators().items():
            self.children.start(f"emulator-{name}", [sys.executable, "-m", *argv], base_env)
        self.children.start("gateway", self._gateway_argv(self.ports.gateway), self.function_env())
        self._start_worker()
        ports = [self.ports.tasks, self.ports.gestao, self.ports.runninghub,
                 *self.ports.providers.values()]  # fmt: skip
        self._wait(lambda: all(listening(p) for p in ports), "the emulators")
        self._wait(lambda: _healthy(self.gateway) and _healthy(self.worker), "the gateways")

    def stop(self) -> None:
        self.proxy.stop()
        supervise.shutdown((c.proc for c in self.children.started), grace_s=5.0)

    def _emulators(self) -> dict[str, list[str]]:
        plan, ports = self.plan, self.ports
        argv = {
            p: [f"infra.emulators.{p}", "--port", str(ports.providers[p]), "--seed", "7",
                *[f"--seed-token={t}={plan.records}" for t in plan.tokens.get(p, [])]]
            for p in PROVIDERS
        }  # fmt: skip
        argv["gestao-scouter"] = [
            "infra.emulators.postgrest", "--port", str(ports.gestao),
            "--database-url", plan.remote_database_url, f"--jwt-secret={plan.jwt_secret}",
            f"--api-key={plan.remote_key}=service_role",
        ]  # fmt: skip
        argv["runninghub"] = [
            "infra.emulators.runninghub", "--port", str(ports.runninghub),
            "--api-key", RUNNINGHUB_KEY, "--run-seconds", "-1", "--max-concurrent", "100000",
        ]  # fmt: skip
        return argv

    def _gateway_argv(self, port: int) -> list[str]:
        return [sys.executable, "-m", "infra.local.gateway", "--port", str(port)]

    def function_env(self) -> dict[str, str]:
        """The environment both gateways' functions run with."""
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.plan.database_url,
            "JWT_SECRET": self.plan.jwt_secret,
            "DISPATCHER": "cloudtasks",
            "TASKS_EMULATOR_HOST": f"127.0.0.1:{self.ports.tasks}",
            "FUNCTIONS_BASE_URL": self.proxy_url,  # every Cloud Task goes through the proxy
            "SECRET_BACKEND": "env",
            "ALERT_EMAIL_TRANSPORT": "disabled",
            "RUNNINGHUB_BASE_URL": self.emulator("runninghub"),
            "RUNNINGHUB_API_KEY": RUNNINGHUB_KEY,
            "RUNNINGHUB_WEBHOOK_URL": f"{self.gateway}/runninghub-queue-manager/webhook",
            **self.plan.settings,
        }

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + READY_S
        while not ready():
            dead = self.children.first_dead()
            if dead is not None:
                raise StackFailed(supervise.death_report(dead, str(dead.log)))
            if time.monotonic() > deadline:
                raise StackFailed(f"{what} did not come up within {READY_S:.0f} s")
            time.sleep(0.1)

    # -- the worker ------------------------------------------------------------------------
    def _start_worker(self) -> None:
        name = f"worker-{len(self.incarnations) + 1}"
        child = self.children.start(
            name, self._gateway_argv(self.ports.worker), self.function_env()
        )
        self.incarnations.append(Incarnation(child, time.time()))

    def kill_worker(self, restart_after_s: float) -> None:
        """SIGKILL the worker (whatever it runs dies with it), then start a new one."""
        with self._worker_lock:
            current = self.incarnations[-1]
            current.child.proc.kill()
            current.child.proc.wait()
            current.killed = time.time()
            time.sleep(restart_after_s)
            self._start_worker()

    def worker_logs(self) -> list[tuple[list[str], float | None]]:
        """Each worker incarnation's log lines, and when it was killed (None: it was not)."""
        return [
            (life.child.log.read_text(encoding="utf-8", errors="replace").splitlines(), life.killed)
            for life in self.incarnations
        ]

    def check_alive(self) -> None:
        """StackFailed naming a process of the stack that died on its own."""
        killed = {i.child.name for i in self.incarnations if i.killed is not None}
        for child in self.children.started:
            if child.name not in killed and child.proc.poll() is not None:
                raise StackFailed(supervise.death_report(child, str(child.log)))

    # -- the emulators' knobs -----------------------------------------------------------------
    def knobs(self, name: str, **values: Any) -> None:
        """Set an emulator's fault knobs (`POST /__admin/knobs`)."""
        url = f"{self.emulator(name)}/__admin/knobs"
        answer = httpx.post(url, json=values, timeout=10, trust_env=False)
        answer.raise_for_status()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
