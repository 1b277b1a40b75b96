"""Wake-ups: a Cloud Task that calls a kind's function for one job (or any due job).

Postgres is the truth and a wake-up only a nudge: a lost one costs a sweep interval, a
duplicate finds nothing to claim. Keys de-duplicate the wake-ups that must happen once
per event (a job's first run, its retry after attempt n, a continuation after batch n);
one scheme for every kind: `<kind>:<job id>:<event>`.
"""

from __future__ import annotations

from uuid import UUID

from shared.dispatch import Task, dispatch
from shared.jobs.kind import Kind


def key(kind: Kind, job_id: UUID, *event: object) -> str:
    """The de-duplication key of one wake-up."""
    return ":".join([kind.name, str(job_id), *(str(part) for part in event)])


def wake(
    kind: Kind,
    job_id: UUID | None = None,
    *,
    tenant_id: UUID | None = None,
    event: tuple[object, ...] | None = None,
    delay_s: float = 0.0,
) -> bool:
    """Send a wake-up; with `event`, at most once per (job, event). Whether it was sent."""
    name = key(kind, job_id, *event) if event is not None and job_id is not None else None
    task = Task(kind.function, kind.wake_body(job_id, tenant_id), delay_s=delay_s, key=name)
    return dispatch(task)
