"""Credits commands: top up a user's balance, show a user's balance and recent jobs."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from shared import db
from shared.credits import store


def register(sub: Any) -> None:
    p = sub.add_parser("credits-grant", help="Add credits to a user's account.")
    p.add_argument("--user", type=uuid.UUID, required=True)
    p.add_argument("--amount", type=_positive, required=True)
    p.set_defaults(handler=_grant)

    p = sub.add_parser("credits-show", help="Show a user's credit balance and ledger.")
    p.add_argument("--user", type=uuid.UUID, required=True)
    p.set_defaults(handler=_show)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _grant(args: argparse.Namespace) -> int:
    with db.transaction() as conn:
        balance = store.grant(conn, args.user, args.amount)
    print(f"user {args.user}: balance {balance}")
    return 0


def _show(args: argparse.Namespace) -> int:
    with db.transaction() as conn:
        balance, moves = store.account(conn, args.user)
    print(f"user {args.user}: balance {balance}")
    for m in moves:
        print(f"  {m['created_at']:%Y-%m-%d %H:%M:%S}  {m['kind']:<6} {m['amount']:>6}"
              f"  {m['job_table']} {m['job_id']}")  # fmt: skip
    return 0
