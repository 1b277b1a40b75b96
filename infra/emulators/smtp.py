"""A local SMTP sink for `make run`: every mail syncq sends is kept as a file a person can
read, `<out>/<time>-<n>.eml` (open it in any mail program, or read it as text). The newest
`--keep` mails stay (1000 by default): run after run, the folder does not grow without bound.

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

    def __init__(self, out: Path, keep: int) -> None:
        self.out = out
        self.keep = keep
        self._count = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._count):06d}.eml"
        (self.out / name).write_bytes(envelope.original_content or envelope.content)
        self.prune()
        return "250 OK: kept"

    def prune(self) -> None:
        """Only the newest `keep` mails stay (by when each was written)."""
        kept = sorted(self.out.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        for old in kept[: max(0, len(kept) - self.keep)]:
            old.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m infra.emulators.smtp``."""
    parser = argparse.ArgumentParser(prog="python -m infra.emulators.smtp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8106)
    parser.add_argument("--out", type=Path, default=Path(".data/mail"))
    parser.add_argument("--keep", type=int, default=1000, help="the newest mails kept")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be 1 or more")
    args.out.mkdir(parents=True, exist_ok=True)
    sink = Sink(args.out, args.keep)
    sink.prune()  # a smaller --keep than the last run's applies at once
    controller = Controller(sink, hostname=args.host, port=args.port)
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
