"""`python -m infra.emulators.runninghub --port 8104 --api-key KEY [flags]`.

RunningHub flags are parsed here; everything else (`--seed`, `--seed-token KEY=COINS`,
`--latency-ms`, `--error-rate`, `--timeout-rate`, `--knob NAME=VALUE`, ...) goes to the
common `run_cli`. SIGTERM stops the server cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from infra.emulators._common import Knobs, run_cli
from infra.emulators.runninghub.app import create_app
from infra.emulators.runninghub.model import ANY_WORKFLOW, RunningHubKnobs
from infra.emulators.runninghub.state import RunningHubState


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--api-key", action="append", default=[], help="accepted apiKey (repeatable)")
    p.add_argument("--max-concurrent", type=int, help="slots per apiKey (421 beyond)")
    p.add_argument("--workflows", help="'any' or comma-separated workflow ids")
    p.add_argument("--queue-seconds", type=float)
    p.add_argument("--run-seconds", type=float, help="negative: tasks never finish")
    p.add_argument("--fail-workflow", action="append", default=[])
    p.add_argument("--failure-rate", type=float)
    p.add_argument("--public-url", help="base of output fileUrl values")
    p.add_argument("--webhook-timeout", type=float, dest="webhook_timeout_s")
    p.add_argument("--webhook-attempts", type=int, dest="webhook_max_attempts")
    p.add_argument("--webhook-retry-delay", type=float, dest="webhook_retry_delay_s")
    p.add_argument("--webhook-replays", type=int)
    p.add_argument("--unreachable", action="store_true", default=None)
    return p


def knob_changes(args: argparse.Namespace) -> dict[str, Any]:
    """RunningHub knob values given on the command line."""
    names = (
        "max_concurrent", "workflows", "queue_seconds", "failure_rate", "public_url",
        "webhook_timeout_s", "webhook_max_attempts", "webhook_retry_delay_s",
        "webhook_replays", "unreachable",
    )  # fmt: skip
    changes = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.run_seconds is not None:
        changes["run_seconds"] = None if args.run_seconds < 0 else args.run_seconds
    if args.fail_workflow:
        changes["fail_workflows"] = args.fail_workflow
    if changes.get("workflows") not in (None, ANY_WORKFLOW):
        changes["workflows"] = str(changes["workflows"]).split(",")
    return changes


class _Factory:
    """Builds the state for `run_cli`, adding the apiKeys and RunningHub knobs."""

    knobs_cls = RunningHubKnobs

    def __init__(self, api_keys: list[str], changes: dict[str, Any], port: int) -> None:
        self.api_keys = api_keys
        self.changes = changes
        self.port = port

    def __call__(self, *, seed: int, knobs: Knobs) -> RunningHubState:
        changes = {"public_url": f"http://127.0.0.1:{self.port}", **self.changes}
        try:
            knobs.update(changes)
        except ValueError as exc:
            raise SystemExit(str(exc)) from exc
        return RunningHubState(seed=seed, knobs=knobs, api_keys=self.api_keys)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the emulator until SIGINT/SIGTERM."""
    args, rest = _parser().parse_known_args(argv)
    keys = args.api_key or [os.environ.get("RUNNINGHUB_API_KEY", "test-api-key")]
    port_args = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    port_args.add_argument("--port", type=int, default=8104)
    port = port_args.parse_known_args(rest)[0].port
    signal.signal(signal.SIGTERM, _sigterm)
    factory = _Factory(keys, knob_changes(args), port)
    run_cli(create_app, rest, state_factory=factory, name="runninghub", default_port=8104)
    return 0


if __name__ == "__main__":
    sys.exit(main())
