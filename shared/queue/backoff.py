"""Retry policy as pure functions: what to do after a failed attempt, and how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    RETRY = "retry"
    FAIL = "fail"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay_s: float = 0.0


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rand: float) -> float:
    """Exponential backoff with "equal jitter" for the retry after `attempt` (1-based).

    The delay lies in [e/2, e] where e = min(cap, base * 2**(attempt-1)), so successive
    delays never shrink and concurrent failures spread out. `rand` is in [0, 1).
    An attempt below 1 counts as the first: legacy rows of the old system say 'running'
    with attempts 0, and rescuing them must not fail.
    """
    attempt = max(attempt, 1)
    exponential = min(cap_s, base_s * 2.0 ** (attempt - 1))
    return exponential / 2 + exponential / 2 * min(max(rand, 0.0), 1.0)


def decide(
    *,
    attempts: int,
    max_attempts: int,
    retryable: bool,
    cancel_requested: bool = False,
    base_s: float,
    cap_s: float,
    rand: float | None = None,
) -> Decision:
    """After a failed or abandoned attempt: cancel, retry later, or fail for good."""
    if cancel_requested:
        return Decision(Verdict.CANCEL)
    if not retryable or attempts >= max_attempts:
        return Decision(Verdict.FAIL)
    r = random.random() if rand is None else rand
    return Decision(Verdict.RETRY, backoff_delay(attempts, base_s=base_s, cap_s=cap_s, rand=r))
