"""How many event streams one process serves per user and per tenant.

A stream takes a slot before it subscribes and gives it back however it ends (the client
went away, its time was up, an error); beyond a cap the caller gets 429. The counts are
this process's own: each instance caps its streams, none knows the others'.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TypeVar
from uuid import UUID

from shared.errors import TooManyRequests

K = TypeVar("K")


class Slot:
    """One open stream's place in the counts; `release` gives it back, once."""

    def __init__(self, caps: StreamCaps, user: str, tenant: UUID) -> None:
        self.user, self.tenant = user, tenant
        self._caps = caps
        self.released = False  # guarded by the caps' lock

    def release(self) -> None:
        """Give the place back (idempotent)."""
        self._caps.release(self)


class StreamCaps:
    """Counts of open streams by user and by tenant, checked and changed under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_user: Counter[str] = Counter()
        self._by_tenant: Counter[UUID] = Counter()

    def acquire(self, user: str, tenant: UUID, *, per_user: int, per_tenant: int) -> Slot:
        """A slot for one more stream, or TooManyRequests saying which cap is reached."""
        with self._lock:
            if self._by_user[user] >= per_user:
                raise TooManyRequests(
                    "You have too many event streams open; close one and retry.",
                    details={"scope": "user", "limit": per_user},
                )
            if self._by_tenant[tenant] >= per_tenant:
                raise TooManyRequests(
                    "This tenant has too many event streams open; retry later.",
                    details={"scope": "tenant", "limit": per_tenant},
                )
            self._by_user[user] += 1
            self._by_tenant[tenant] += 1
        return Slot(self, user, tenant)

    def release(self, slot: Slot) -> None:
        """Give a slot back; a second release of the same slot changes nothing."""
        with self._lock:
            if slot.released:
                return
            slot.released = True
            _decrement(self._by_user, slot.user)
            _decrement(self._by_tenant, slot.tenant)

    def open_streams(self) -> int:
        """Streams holding a slot now."""
        with self._lock:
            return sum(self._by_user.values())


def _decrement(counts: Counter[K], key: K) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]  # the keys do not pile up over the process's life
