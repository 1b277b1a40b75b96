"""Credits commands: top up a user's balance, show a user's balance and recent jobs, and
create a render job for a user (through the same service as POST /create, as that user).
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from infra.local import demo
from infra.ops._args import friendly
from shared import db
from shared.auth import Principal
from shared.credits import service, store
from shared.credits.models import (
    CreateRequest,
    CreditJobRef,
    CreditJobTable,
    idempotency_key,
)
from shared.errors import InvalidJson, ValidationFailed
from shared.web import parse_json_body, parse_model


def register(sub: Any) -> None:
    p = sub.add_parser("credits-grant", help="Add credits to a user's account.")
    p.add_argument("--user", type=uuid.UUID, required=True)
    p.add_argument("--amount", type=_positive, required=True)
    p.set_defaults(handler=_grant)

    p = sub.add_parser("credits-show", help="Show a user's credit balance and ledger.")
    p.add_argument("--user", type=uuid.UUID, required=True)
    p.set_defaults(handler=_show)

    p = sub.add_parser(
        "credits-create", help="Create a pending render job for a user, as POST /create does."
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", type=uuid.UUID, help="a user id")
    who.add_argument("--demo", choices=list(demo.demo_users()), help="a demo user")
    p.add_argument(
        "--table", choices=[t.value for t in CreditJobTable], default=CreditJobTable.IMAGE.value
    )
    p.add_argument("--workflow", default=demo.DEMO_WORKFLOW, help="a priced workflow id")
    p.add_argument("--inputs", type=_json_list, default=[], help="RunningHub nodeInfoList (JSON)")
    p.add_argument("--session", help="a session id to group the job with")
    p.add_argument(
        "--idempotency-key",
        type=_idempotency_key,
        help="as the Idempotency-Key header: run again with the same key, the same job",
    )
    p.add_argument("--start", action="store_true", help="then start it (as POST /start)")
    p.set_defaults(handler=_create)


MAX_GRANT = 2**31 - 1  # one grant; a balance is a bigint, far beyond any sum of grants


def _positive(text: str) -> int:
    value = int(text)
    if not 0 < value <= MAX_GRANT:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {MAX_GRANT}")
    return value


def _json_list(text: str) -> list[Any]:
    """A JSON array the database can store, checked as a request body is (no NaN, NUL or
    lone surrogate)."""
    try:
        value = parse_json_body(text.encode("utf-8", "surrogatepass"))
    except InvalidJson as exc:  # said of a request's body; here it is the option's value
        why = exc.message.replace("The body", "The value").replace("the body", "the value")
        raise argparse.ArgumentTypeError(f"must be a JSON array: {why}") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("must be a JSON array")
    return value


def _idempotency_key(text: str) -> str:
    try:
        idempotency_key(text)
    except ValidationFailed:
        raise argparse.ArgumentTypeError(
            "must be 1-255 printable ASCII characters, no space at either end"
        ) from None
    return text


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


# The body field each of credits-create's options fills.
_OPTIONS = {"table": "--table", "workflowId": "--workflow", "inputs": "--inputs",
            "sessionId": "--session"}  # fmt: skip


def _by_option(detail: dict[str, Any]) -> dict[str, Any]:
    loc = detail["loc"]
    return {**detail, "loc": [_OPTIONS.get(loc[0], loc[0]), *loc[1:]]} if loc else detail


@friendly
def _create(args: argparse.Namespace) -> int:
    """The job as JSON (then as /start answered, with --start); errors as the envelope."""
    user = demo.demo_users()[args.demo] if args.demo else args.user
    owner = Principal("user", user)  # the operator acts as the user: the same rules apply
    body = {"table": args.table, "workflowId": args.workflow, "inputs": args.inputs}
    if args.session is not None:
        body["sessionId"] = args.session
    try:
        request = parse_model(CreateRequest, body)
    except ValidationFailed as exc:  # named by the option the operator gave, not the field
        raise ValidationFailed(details=[_by_option(d) for d in exc.details]) from exc
    job = service.create(owner, request, args.idempotency_key)
    print(job.model_dump_json(indent=2))
    if args.start:
        started = service.start(owner, CreditJobRef(table=args.table, job_id=job.id))
        print(started.model_dump_json(indent=2))
    return 0
