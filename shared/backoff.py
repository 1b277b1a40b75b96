"""The one backoff of syncq: exponential with "equal jitter", for every wait before a
retry (a job's next attempt, an HTTP try, a database write, a listener's reconnect); and
the one retry loop (tenacity) that an HTTP try and a database write are repeated in."""

from __future__ import annotations

from collections.abc import Callable

import tenacity


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rand: float) -> float:
    """The delay before the retry after `attempt` (1-based), with "equal jitter".

    It lies in [e/2, e] where e = min(cap, base * 2**(attempt-1)), so successive delays
    never shrink and concurrent failures spread out. `rand` is in [0, 1). An attempt below
    1 counts as the first: legacy rows of the old system say 'running' with attempts 0,
    and rescuing them must not fail.
    """
    attempt = max(attempt, 1)
    exponential = min(cap_s, base_s * 2.0 ** min(attempt - 1, 64))
    return exponential / 2 + exponential / 2 * min(max(rand, 0.0), 1.0)


def retrying(
    retry: Callable[[BaseException], bool],
    *,
    attempts: int,
    wait: Callable[[tenacity.RetryCallState], float],
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.Retrying:
    """The retry loop: at most `attempts` tries (the first included, at least one), again
    only after a failure `retry` accepts, `wait` seconds apart; the last failure is raised
    as it was."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(attempts, 1)),
        wait=wait,
        retry=tenacity.retry_if_exception(retry),
        before_sleep=before_sleep,
        reraise=True,
    )
