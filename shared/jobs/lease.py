"""One claimed job as its runner holds it: every change is conditional on the lease."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import Conn, Row
from shared.errors import LeaseLost
from shared.jobs import store
from shared.jobs.store import Release
from shared.jobs.table import JobTable


class Lease:
    """The lease token of one claimed job. Each method raises `LeaseLost` once the job was
    rescued, reset or finished by someone else: a zombie runner can change nothing."""

    def __init__(self, table: JobTable, row: Row) -> None:
        self.table = table
        self.job_id: UUID = row["id"]
        self.token: UUID = row["lease_token"]

    def heartbeat(self, conn: Conn, **params: Any) -> Row:
        """Keep the lease alive (and record the kind's progress values); the row as it now
        stands, so the runner sees a cancel or a pause requested meanwhile."""
        row = store.heartbeat(conn, self.table, self.job_id, self.token, **params)
        if row is None:
            raise LeaseLost(str(self.job_id))
        return row

    def lock(self, conn: Conn) -> Row:
        """The job locked while its next state is decided against the requests it has."""
        row = store.lock_held(conn, self.table, self.job_id, self.token)
        if row is None:
            raise LeaseLost(str(self.job_id))
        return row

    def release(self, conn: Conn, status: str, **values: Any) -> Row:
        """Hand the job back in `status` (see `store.Release` for the values)."""
        params = values.pop("params", {})
        done = store.release(
            conn, self.table, [Release(self.job_id, self.token, status, **values)], **params
        )
        if not done:
            raise LeaseLost(str(self.job_id))
        return done[0]
