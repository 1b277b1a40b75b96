"""`emulators`: start the provider emulators alone (the same processes `make run` starts),
seeded with the demo tenants' credentials, for poking at the APIs with curl. Ctrl-C stops
them."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg

from infra.local import demo
from infra.local.pg import place, reason
from infra.local.stack import EMULATORS, ROOT, Ports, StackContext
from infra.local.supervise import check_ports
from shared.settings import get_settings

CURL = {
    "acessorias": (
        "curl -s '{url}/companies/ListAll?Pagina=1&contacts' -H 'Authorization: Bearer {cred}'"
    ),
    "onecode": "curl -s '{url}/api/contacts?page=1&pageSize=5' -H 'Authorization: Bearer {cred}'",
    "bomcontrole": (
        "curl -s '{url}/integracao/Financeiro/Pesquisar?dataInicio=2000-01-01%2000:00:00"
        "&dataTermino=2100-01-01%2000:00:00&tipoData=UltimaAlteracao"
        "&paginacao.itensPorPagina=5' -H 'Authorization: ApiKey {cred}'"
    ),
}


def register(sub: Any) -> None:
    """Add `emulators`."""
    p = sub.add_parser(
        "emulators",
        help="Start the provider emulators alone, with a curl line each (Ctrl-C stops them).",
    )
    p.add_argument("--only", nargs="+", choices=sorted(EMULATORS), help="a subset")
    p.set_defaults(handler=run)


def _port(ports: Ports, name: str) -> int:
    return int(getattr(ports, name.replace("-", "_"), 0))


def _hints(ctx: StackContext, names: list[str]) -> list[str]:
    lines = []
    tenant = demo.TENANTS[0]
    for provider in demo.PROVIDERS:
        if provider.slug not in names:
            continue
        url = ctx.url(_port(ctx.ports, provider.slug))
        cred = demo.demo_secret(tenant, provider.slug, provider.secret_keys[0])
        lines.append(f"{provider.slug:<12} {url}   ({tenant.slug}: {cred})")
        if provider.slug in CURL:
            lines.append("  " + CURL[provider.slug].format(url=url, cred=cred))
    return lines


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the children like Ctrl-C does


# The remote Gestão Scouter projects create their databases, roles and schema on start.
NEEDS_DATABASE = ("gestao-scouter", "gestao-scouter-2")


def _no_database() -> str | None:
    """Why the Gestão Scouter projects cannot start here (None: they can). Not the settings'
    default server, which may be some other program's; nor a stopped stack's, whose URL
    .data/local.env still holds."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "No database"
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as exc:
        return f"No database answers at {place(url)} ({reason(exc)})"
    return None


def run(args: argparse.Namespace) -> int:
    """Start the chosen emulators as child processes and wait for Ctrl-C."""
    names = args.only or sorted(EMULATORS)
    needing = [name for name in names if name in NEEDS_DATABASE]
    if needing and (problem := _no_database()):
        print(f"{problem} for {', '.join(needing)}: set DATABASE_URL, start the local stack"
              " (make run), or leave them out with --only.", file=sys.stderr)  # fmt: skip
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    ctx = StackContext(Ports.from_env(), get_settings().db.database_url)
    ours = {Ports.variable(name.replace("-", "_")) for name in names}
    check_ports(  # before anything starts, as `make run` does
        [c for c in ctx.ports.claims() if c.variable in ours],
        command="python -m infra.ops emulators",
    )
    procs = [
        subprocess.Popen([sys.executable, *EMULATORS[name](ctx)], cwd=ROOT)  # noqa: S603
        for name in names
    ]
    time.sleep(1.0)
    print("\n".join(["", *_hints(ctx, names), "", "admin: <url>/__admin/knobs|stats|reset"]))
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("an emulator exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
