"""Small real providers for queue tests: they run through the same worker as the real ones."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.errors import UpstreamError
from shared.providers.base import SyncContext, SyncResult


class AnyOptions(BaseModel):
    """A test provider takes any payload (the queue tests pass theirs through)."""

    model_config = ConfigDict(extra="allow")


@dataclass
class ScriptedProvider:
    """Fails the first `failures` runs (retryably), then succeeds; counts runs."""

    slug: str = "scripted"
    display_name: str = "Scripted"
    options: ClassVar[type[BaseModel]] = AnyOptions
    failures: int = 0
    pages: int = 3
    runs: int = 0
    hold: threading.Event | None = None  # when set, each page (and each failure) waits for it
    page_delay_s: float = 0.0
    started: threading.Event = field(default_factory=threading.Event)

    def sync(self, ctx: SyncContext) -> SyncResult:
        self.runs += 1
        self.started.set()
        if self.runs <= self.failures:
            if self.hold is not None:
                self.hold.wait(10)
            raise UpstreamError("scripted failure", details={"run": self.runs})
        for page in range(self.pages):
            if self.hold is not None:
                self.hold.wait(10)
            time.sleep(self.page_delay_s)
            ctx.progress(int(100 * page / self.pages))
        return SyncResult(records=self.pages * 10, pages=self.pages)
