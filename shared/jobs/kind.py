"""What a kind of job provides to the engine. A new kind is one module that builds a
`Kind` plus one registration line in `shared.kinds` (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from shared.db import Conn, Row
from shared.jobs.table import JobTable


class Kind(Protocol):
    """A kind of leased job: where its rows live, how one runs, what a stale one becomes."""

    @property
    def name(self) -> str:
        """Short and stable: the prefix of its wake-up keys and its log label."""

    @property
    def table(self) -> JobTable: ...

    @property
    def function(self) -> str:
        """The function its wake-ups are sent to."""

    @property
    def drains_in_sweep(self) -> bool:
        """True: the sweep claims and runs its due jobs itself (short jobs); False: the
        sweep sends each due job a wake-up, to run in its own request (long, budgeted)."""

    def stale_after_s(self) -> float:
        """A running job without a heartbeat for this long is handed back by the sweep."""

    def wake_body(self, job_id: UUID | None, tenant_id: UUID | None) -> dict[str, Any]:
        """The body of a wake-up for one job (or, with None, for any due job)."""

    def run(self, row: Row, deadline: float) -> dict[str, Any]:
        """Run one claimed job to its next state and report it (JSON-able).

        Never raises for the job's own failure: a failure is a state (retry, error, pause).
        """

    def before_rescue(self, conn: Conn, rows: list[Row]) -> None:
        """Lock, in one order, the rows besides the jobs that rescuing these stale jobs may
        change, before any of them is handed back (the transaction's lock order)."""

    def rescue(self, conn: Conn, row: Row) -> list[Row]:
        """Hand back one stale job (locked, lease expired) and return the released rows;
        the engine wakes those that went back to pending once this transaction commits."""
