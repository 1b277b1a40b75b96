"""The credits queue manager's errors: leaves of the one hierarchy in shared.errors.

SyncqError
 ├── TooManyActiveJobs (429 too_many_active_jobs)
 ├── Conflict
 │    └── JobExists (409 job_exists)
 ├── Unprocessable
 │    └── UnknownWorkflow (422 unknown_workflow)
 └── ServiceUnavailable
      └── RunningHubNotConfigured (503 runninghub_not_configured)
"""

from __future__ import annotations

from shared.errors import Conflict, ServiceUnavailable, SyncqError, Unprocessable


class TooManyActiveJobs(SyncqError):
    """The owner already has the most jobs queued or running; retry once one ends.

    429 rather than 409: nothing is wrong with this job, the caller is over a quota that
    frees itself, and clients already back off and retry on 429.
    """

    status, code = 429, "too_many_active_jobs"
    default_message = "You already have the most jobs queued or running; wait for one to end."


class JobExists(Conflict):
    """/create with an `id` that a job already has (a retried create whose first try landed)."""

    code, default_message = "job_exists", "A job with this id already exists."


class UnknownWorkflow(Unprocessable):
    code, default_message = "unknown_workflow", "This workflow has no price; it cannot be run."


class RunningHubNotConfigured(ServiceUnavailable):
    code = "runninghub_not_configured"
    default_message = "AI renders are unavailable: RunningHub is not configured."
