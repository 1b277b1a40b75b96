"""The one backoff of syncq: exponential with "equal jitter", for every wait before a
retry (a job's next attempt, an HTTP try, a database write, a listener's reconnect)."""

from __future__ import annotations


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
