"""syncq operations CLI: `python -m infra.ops <command> ...` (see README).

Each module in COMMAND_MODULES exposes `register(subparsers)`; a command's handler
takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = [
    "infra.ops.base",
    "infra.ops.jobs",
    "infra.ops.emulators",
    "infra.ops.credits",
    "infra.ops.gestao",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    from infra.local.stack import load_local_env

    load_local_env()  # talk to the `make run` stack unless the environment says otherwise
    sys.exit(main())
