"""The retry policy, as pure functions: what to do after a failed attempt, and when.

One backoff for every kind (`shared.backoff`: exponential with "equal jitter"). A kind maps
the verdicts to its own states (the integration queue: pending / error / canceled; the
export: pending / paused / paused-or-reset as an admin asked).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from shared.backoff import backoff_delay


class Verdict(StrEnum):
    RETRY = "retry"  # back to pending after `delay_s`
    GIVE_UP = "give_up"  # attempts exhausted or not retryable: the kind's failed state
    STOP = "stop"  # someone asked the job to stop (cancel, pause, reset): that wins


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay_s: float = 0.0


def decide(
    *,
    attempts: int,
    max_attempts: int,
    retryable: bool,
    stop_requested: bool = False,
    base_s: float,
    cap_s: float,
    rand: float | None = None,
    asked_s: float | None = None,
) -> Decision:
    """After a failed or abandoned attempt: stop as asked, retry later, or give up.

    A retry waits the backoff, and no less than the upstream `asked_s` (its Retry-After,
    outlasting the HTTP client's own retries), within `cap_s` so a huge one cannot park the
    job for good."""
    if stop_requested:
        return Decision(Verdict.STOP)
    if not retryable or attempts >= max_attempts:
        return Decision(Verdict.GIVE_UP)
    r = random.random() if rand is None else rand
    delay = backoff_delay(attempts, base_s=base_s, cap_s=cap_s, rand=r)
    if asked_s is not None and asked_s > 0:
        delay = max(delay, min(asked_s, cap_s))
    return Decision(Verdict.RETRY, delay)
