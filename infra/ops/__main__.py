"""syncq operations CLI: `python -m infra.ops <command> ...` (see README).

Each module in COMMAND_MODULES exposes `register(subparsers)`; a command's handler
takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

import psycopg
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from infra.local.pg import place, reason
from infra.local.supervise import StackFailed
from shared import log
from shared.settings import get_settings, refused_settings

COMMAND_MODULES = [
    "infra.ops.base",
    "infra.ops.jobs",
    "infra.ops.schedules",
    "infra.ops.emulators",
    "infra.ops.credits",
    "infra.ops.gestao",
]

DESCRIPTION = """\
Operate syncq from a terminal: the database, tokens, integration jobs and their schedules,
the emulators, credits and Gestão Scouter exports.

Commands use DATABASE_URL and JWT_SECRET from the environment; where it has none, they
use the settings of the last `make run` (kept in .data/local.env), so they act on the
running local stack."""

EPILOG = """\
examples:
  python -m infra.ops token --demo acme-admin      a demo admin's token, for curl
  python -m infra.ops jobs list --tenant acme      the tenant's latest jobs
  python -m infra.ops schedules set --tenant acme --provider acessorias --cron "0 2 * * *"
  python -m infra.ops export start --tenant acme   export leads, with a progress bar

Each command has its own --help."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.ops",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="<command>"
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# Commands that never open the database.
WITHOUT_DATABASE = {"token", "emulators"}


def _not_text(args: argparse.Namespace) -> str | None:
    """The first option whose value is not text the database can hold: bytes that are not
    UTF-8 reach us as lone surrogates (a Latin-1 terminal's `--tenant açme`)."""
    for name, value in vars(args).items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (option := _not_text(args)) is not None:
        parser.error(f"argument --{option.replace('_', '-')}: not valid UTF-8 text")
    if args.command not in WITHOUT_DATABASE and not os.environ.get("DATABASE_URL"):
        # Not the settings' default server: a command must never write to some database
        # that happens to answer there.
        print(
            "No database: set DATABASE_URL, or start the local stack (make run), whose"
            " settings the CLI reads from .data/local.env.",
            file=sys.stderr,
        )
        return 2
    try:
        get_settings()
    except ValidationError as exc:  # one line each, never the value (it may be a secret)
        print("\n".join(refused_settings(exc)), file=sys.stderr)
        return 2
    # The pool's reconnect warnings would bury the one line said when no database answers.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    log.to_stderr()  # what a command runs logs beside its answer, which alone is on stdout
    try:
        if args.command not in WITHOUT_DATABASE:  # at once, with the server's own reason
            timeout_s = max(2, round(get_settings().db.db_connect_timeout_s))
            psycopg.connect(get_settings().db.database_url, connect_timeout=timeout_s).close()
        return int(args.handler(args) or 0)
    except StackFailed as exc:  # a local stack's setting, e.g. a <NAME>_PORT that is no port
        print(exc, file=sys.stderr)
        return 2
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        # The server and the database answer, syncq's tables (or their newest columns) don't.
        print(f"The database at {place(os.environ['DATABASE_URL'])} is not migrated (or is"
              " behind this code): run make migrate.", file=sys.stderr)  # fmt: skip
        return 1
    except (psycopg.OperationalError, PoolTimeout) as exc:
        if isinstance(exc, psycopg.Error) and exc.sqlstate is not None:
            raise  # the server answered (a timeout, a shutdown): not a missing database
        where = place(os.environ["DATABASE_URL"])
        why = reason(exc) if isinstance(exc, psycopg.Error) else type(exc).__name__
        print(f"Cannot reach the database at {where} ({why}): is the local stack (make run)"
              " up, or DATABASE_URL right?", file=sys.stderr)  # fmt: skip
        return 1


def run() -> int:
    """main(), where a reader that goes away (`... | head`) ends us quietly, as it does `ls`.

    SIGPIPE keeps Python's default (an error, not death): a socket a command writes to may
    close under it too, and that must stay an error."""
    try:
        try:
            return main()
        finally:
            sys.stdout.flush()  # what is still buffered fails here, not at interpreter exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    from infra.local.stack import load_local_env

    load_local_env()  # talk to the `make run` stack unless the environment says otherwise
    sys.exit(run())
