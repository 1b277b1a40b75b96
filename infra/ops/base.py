"""Base commands: migrate, seed-demo, token."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from infra import migrate as migrations
from infra.local import demo
from infra.local.stack import Ports
from infra.ops._args import whole_number
from shared.settings import get_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "migrate", help="Apply the database migrations that have not run yet (safe to repeat)."
    )
    p.set_defaults(handler=_migrate)

    p = sub.add_parser(
        "seed-demo",
        help="Insert the demo tenants, their users, integrations and leads (safe to repeat).",
    )
    p.set_defaults(handler=_seed)

    p = sub.add_parser(
        "token", help="Print a signed token for curl: a demo user's, any user's or the service's."
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--service", action="store_true", help="the service role")
    who.add_argument("--user", type=uuid.UUID, help="a user id")
    who.add_argument("--demo", choices=list(demo.demo_users()), help="a demo user")
    p.add_argument("--ttl", type=whole_number(1, 366 * 86400, "seconds"), default=3600,
                   help="seconds until it expires")  # fmt: skip
    p.set_defaults(handler=_token)


def _migrate(args: argparse.Namespace) -> int:
    try:
        applied = migrations.migrate(get_settings().db.database_url)
    except (migrations.MigrationChanged, migrations.MigrationFailed) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print("applied:", ", ".join(applied) if applied else "nothing (up to date)")
    return 0


def _seed(args: argparse.Namespace) -> int:
    # The running stack's emulators (its ports are in .data/local.env), not the defaults.
    demo.seed(get_settings().db.database_url, Ports.from_env().of_emulators())
    print("demo tenants:", ", ".join(f"{t.slug} ({t.id})" for t in demo.TENANTS))
    return 0


def _token(args: argparse.Namespace) -> int:
    from shared.auth import mint_token  # noqa: PLC0415

    secret = get_settings().auth.jwt_secret
    if secret is None or not secret.get_secret_value():
        print(
            "No JWT_SECRET: set it, or start the local stack (make run), whose settings"
            " the CLI reads from .data/local.env.",
            file=sys.stderr,
        )
        return 2
    if args.service:
        print(mint_token(service=True, ttl_s=args.ttl))
        return 0
    user = demo.demo_users()[args.demo] if args.demo else args.user
    print(mint_token(user_id=user, ttl_s=args.ttl))
    return 0
