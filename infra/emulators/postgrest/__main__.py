"""`python -m infra.emulators.postgrest --port 8105 --database-url URL --jwt-secret S [knobs]`.

Without --database-url it uses the database `--database NAME` (default `gestao_scouter`) on
the server of $DATABASE_URL, with its credentials: a password then never shows in the
process list. Without --jwt-secret, $GESTAO_SCOUTER_JWT_SECRET, then $JWT_SECRET.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from werkzeug.serving import WSGIRequestHandler, make_server

from infra.emulators.postgrest.app import create_app
from infra.emulators.postgrest.bootstrap import sibling_url
from infra.emulators.postgrest.state import (
    DEFAULT_PROJECT_REF,
    Knobs,
    PostgrestState,
    WebhookConfig,
    parse_ids,
)

REMOTE_DATABASE = "gestao_scouter"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log unless --access-log (benchmarks would drown in it)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infra.emulators.postgrest", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8105)
    p.add_argument("--database-url", default=None)
    p.add_argument("--database", default=REMOTE_DATABASE, help="beside $DATABASE_URL's")
    p.add_argument("--jwt-secret", default=None)
    p.add_argument("--project-ref", default=DEFAULT_PROJECT_REF)
    p.add_argument("--webhook-url", default=None, help="reverse-sync target (trigger -> POST)")
    p.add_argument("--webhook-secret", default=None)
    p.add_argument(
        "--api-key", action="append", default=[], metavar="KEY=ROLE",
        help="an opaque (sb_secret_/sb_publishable_-style) key and its role (repeatable)",
    )  # fmt: skip
    p.add_argument("--pool-size", type=int, default=8)
    p.add_argument("--no-schema", action="store_true", help="do not create public.leads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--timeout-rate", type=float, default=0.0)
    p.add_argument("--hang-s", type=float, default=30.0)
    p.add_argument("--post-commit-error-rate", type=float, default=0.0)
    p.add_argument("--reject-ids", default="", help="comma-separated lead ids to reject")
    p.add_argument("--reject-status", type=int, choices=(400, 409), default=400)
    p.add_argument("--access-log", action="store_true")
    return p


def _database_url(arg: str | None, name: str) -> str:
    if arg:
        return arg
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("give --database-url or set DATABASE_URL")
    return sibling_url(base, name)


def _opaque_keys(items: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in items:
        key, sep, role = item.rpartition("=")
        if not sep or not key or role not in ("anon", "service_role"):
            raise SystemExit(f"--api-key expects KEY=anon|service_role, got {item!r}")
        keys[key] = role
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the emulator until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    secret = (
        args.jwt_secret
        or os.environ.get("GESTAO_SCOUTER_JWT_SECRET")
        or os.environ.get("JWT_SECRET")
    )
    if not secret:
        raise SystemExit("give --jwt-secret or set JWT_SECRET")
    knobs = Knobs(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        timeout_rate=args.timeout_rate,
        hang_s=args.hang_s,
        post_commit_error_rate=args.post_commit_error_rate,
        reject_ids=parse_ids(args.reject_ids),
        reject_status=args.reject_status,
    )
    state = PostgrestState(
        _database_url(args.database_url, args.database),
        secret,
        project_ref=args.project_ref,
        webhook=WebhookConfig(args.webhook_url, args.webhook_secret),
        opaque_keys=_opaque_keys(args.api_key),
        pool_size=args.pool_size,
        apply_schema=not args.no_schema,
        seed=args.seed,
        knobs=knobs,
    )
    handler = WSGIRequestHandler if args.access_log else _QuietHandler
    server = make_server(
        args.host, args.port, create_app(state), threaded=True, request_handler=handler
    )
    thread = threading.Thread(target=server.serve_forever, name="postgrest-http", daemon=True)
    thread.start()
    url = f"http://{args.host}:{server.server_port}"
    print(f"Gestão Scouter (PostgREST) emulator on {url}/rest/v1", flush=True)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # A short sleep, not signal.pause(): a signal landing between the check and the pause
    # would leave the pause waiting for another (the stack then killed it after its grace).
    while not stopping:
        time.sleep(0.2)
    state.stop()
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
