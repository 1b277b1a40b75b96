"""A local SMTP sink for `make run`: every mail syncq sends is kept as a file a person can
read, `<out>/<time>-<n>.eml` (open it in any mail program, or read it as text).

Run: ``python -m infra.emulators.smtp --port 8106 --out .data/mail``.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    """aiosmtpd handler: write each accepted message to its own file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._count = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._count):04d}.eml"
        (self.out / name).write_bytes(envelope.original_content or envelope.content)
        return "250 OK: kept"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m infra.emulators.smtp``."""
    parser = argparse.ArgumentParser(prog="python -m infra.emulators.smtp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8106)
    parser.add_argument("--out", type=Path, default=Path(".data/mail"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(args.out), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp sink on {args.host}:{args.port}, mails in {args.out}", flush=True)
    # The handler only flips a flag: Event.set() in a handler can deadlock on the lock the
    # main thread holds inside Event.wait() when the signal lands.
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    while not stopping:
        time.sleep(0.2)
    controller.stop()


if __name__ == "__main__":
    main()
