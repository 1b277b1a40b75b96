"""`schedules list|set|delete`: a tenant's scheduled syncs, as the service (same rules and
validation as integration-schedules)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from infra.ops._args import friendly, tenant_named
from shared.auth import SERVICE
from shared.cron import Missed
from shared.queue.schedules import delete_schedule, list_schedules, put_schedule
from shared.queue.schemas import ScheduleQuery, ScheduleRef, ScheduleRequest
from shared.web import parse_model


def register(sub: Any) -> None:
    schedules = sub.add_parser("schedules", help="List, set or delete a tenant's scheduled syncs.")
    cmds = schedules.add_subparsers(dest="schedules_command", required=True, metavar="<action>")

    p = cmds.add_parser("list", help="the tenant's schedules with their next and last runs")
    p.add_argument("--tenant", required=True, help="tenant slug")
    p.set_defaults(handler=friendly(_list))

    p = cmds.add_parser("set", help="create or change one integration's schedule")
    p.add_argument("--tenant", required=True, help="tenant slug")
    p.add_argument("--provider", required=True, type=str.strip,  # what a person pasted
                   help="provider slug, e.g. acessorias")  # fmt: skip
    p.add_argument("--cron", required=True, help='five fields, e.g. "0 2 * * *"')
    p.add_argument("--timezone", default="America/Sao_Paulo", type=str.strip, help="IANA zone")
    p.add_argument("--missed", choices=[str(m) for m in Missed], default=str(Missed.ONCE),
                   help="what to do with runs missed meanwhile")  # fmt: skip
    p.add_argument("--disable", action="store_true", help="keep it, but do not run it")
    p.add_argument("--no-spread", action="store_true", help="run exactly on the minute")
    p.set_defaults(handler=friendly(_set))

    p = cmds.add_parser("delete", help="remove one integration's schedule")
    p.add_argument("--tenant", required=True, help="tenant slug")
    p.add_argument("--provider", required=True, type=str.strip, help="provider slug")
    p.set_defaults(handler=friendly(_delete))


def _print(body: Any) -> None:
    print(json.dumps(body, ensure_ascii=False, indent=2, default=str))


def _list(args: argparse.Namespace) -> int:
    query = parse_model(ScheduleQuery, {"tenant_id": str(tenant_named(args.tenant))})
    _print(list_schedules(SERVICE, query))
    return 0


def _set(args: argparse.Namespace) -> int:
    req = parse_model(
        ScheduleRequest,
        {
            "tenant_id": str(tenant_named(args.tenant)),
            "provider_slug": args.provider,
            "cron": args.cron,
            "timezone": args.timezone,
            "missed": args.missed,
            "enabled": not args.disable,
            "spread": not args.no_spread,
        },
    )
    _print(put_schedule(SERVICE, req))
    return 0


def _delete(args: argparse.Namespace) -> int:
    ref = {"tenant_id": str(tenant_named(args.tenant)), "provider_slug": args.provider}
    _print(delete_schedule(SERVICE, parse_model(ScheduleRef, ref)))
    return 0
