"""Shared helpers of the benchmarks: a PostgreSQL server, throw-away databases, a table."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from infra.local import pg

_counter = itertools.count()


@contextmanager
def server() -> Iterator[str]:
    """A server URL: DATABASE_URL when set, else an embedded PostgreSQL in a temp folder."""
    with pg.server_url("syncq-bench-pg-") as url:
        yield url


@contextmanager
def fresh_database(server_url: str, label: str) -> Iterator[str]:
    """A new empty database on the server, dropped afterwards."""
    name = f"bench_{label}_{os.getpid()}_{next(_counter)}"
    pg.drop_database(server_url, name)
    url = pg.create_database(server_url, name)
    try:
        yield url
    finally:
        pg.drop_database(server_url, name)


def server_version(server_url: str) -> str:
    """`PostgreSQL 18.1` style version of the server."""
    with psycopg.connect(server_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


@dataclass
class Result:
    """One contender's measured run."""

    contender: str
    jobs: int
    workers: int
    batch: int
    seconds: float
    enqueue_seconds: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0

    @property
    def enqueue_rate(self) -> float | None:
        if not self.enqueue_seconds:
            return None
        return self.jobs / self.enqueue_seconds


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, right-aligned numbers, left-aligned first column."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Write results as pretty JSON."""
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


def result_dict(result: Result, baseline: float | None) -> dict[str, Any]:
    """A result as JSON-friendly dict, with its ratio to the baseline rate."""
    data = asdict(result)
    data["jobs_per_s"] = round(result.rate, 1)
    enqueue = result.enqueue_rate
    data["enqueue_jobs_per_s"] = round(enqueue, 1) if enqueue else None
    data["ratio_vs_syncq"] = round(result.rate / baseline, 3) if baseline else None
    return data
