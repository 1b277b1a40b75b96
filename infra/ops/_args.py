"""Shared by the ops commands: argument types (durations with sane bounds), the tenant a
`--tenant` names, and `friendly`."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from uuid import UUID

from shared import db
from shared.errors import NotFound, SyncqError
from shared.sqlfiles import query

Handler = Callable[[argparse.Namespace], int]


def tenant_named(text: str) -> UUID:
    """The tenant a `--tenant` names: its slug, else its id. The CLI acts as the service, so
    one that does not exist is said to be missing, not "forbidden" as over HTTP."""
    try:
        as_id: UUID | None = UUID(text)
    except ValueError:
        as_id = None
    with db.transaction() as conn:
        row = conn.execute(query("ops", "tenant_named"), {"tenant": text, "id": as_id}).fetchone()
    if row is None:
        raise NotFound(f"No tenant {text!r} (a slug or an id).")
    return UUID(str(row["id"]))


# Beyond about a century, `now() - interval` leaves Postgres's timestamp range: reject
# such thresholds here rather than as a database traceback.
MAX_DAYS = 36_500

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> float:
    """`90`, `90s`, `30m`, `2h`, `1d` -> seconds (argparse type)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30m, 2h, 1d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def positive_duration_s(text: str) -> float:
    """A duration (`30m`, `2h`, `1d`) above zero and at most MAX_DAYS (argparse type)."""
    seconds = duration_s(text)
    if not 0 < seconds <= MAX_DAYS * 86400:
        raise argparse.ArgumentTypeError(
            f"must be above zero and at most {MAX_DAYS}d (try 30m, 2h, 1d), not {text!r}"
        )
    return seconds


def whole_number(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (`unit` names what it counts)."""
    what = f"a whole number of {unit}" if unit else "a whole number"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}, not {text!r}")
        return value

    return parse


def friendly(handler: Handler) -> Handler:
    """Print a SyncqError as its envelope (exit 2) instead of a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except SyncqError as exc:
            print(json.dumps(exc.envelope(), ensure_ascii=False, default=str), file=sys.stderr)
            return 2

    return run
