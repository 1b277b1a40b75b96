"""Fresh clones of the session's template database, made ahead by a thread.

Every database test gets a database of its own, cloned from the migrated template. The
clone is a CREATE DATABASE: 0.06 s on the embedded server, about 0.4 s on a server whose
data sits on a real disk (it waits on the disk, flushing the copy). A thread makes the next
clones while the current test runs, so a test takes one that is ready; when none is (the
server restarting under a test, the thread not done yet), the test makes its own, as
before. Each clone is used by one test only and is still a fresh copy of the template.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading

from infra.local import pg

AHEAD = 1  # clones queued; the thread holds one more, made, until there is room for it


class Clones:
    """Hands out fresh clones of `template` on the server at `server_url`."""

    def __init__(self, server_url: str, template: str, ahead: int = AHEAD) -> None:
        self._server, self._template = server_url, template
        self._names = itertools.count()
        self._names_lock = threading.Lock()
        self._ready: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=ahead)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="db-clones", daemon=True)
        self._thread.start()

    def take(self) -> tuple[str, str]:
        """(name, url) of a clone nobody else has: a ready one, or one made now."""
        try:
            return self._ready.get_nowait()
        except queue.Empty:
            return self._make()

    def close(self) -> None:
        """Stop making clones and drop the ones nobody took."""
        self._stopping.set()
        self._thread.join(30)
        while True:
            try:
                name, _ = self._ready.get_nowait()
            except queue.Empty:
                return
            pg.drop_database(self._server, name)

    def _make(self) -> tuple[str, str]:
        with self._names_lock:
            name = f"syncq_t_{os.getpid()}_{next(self._names)}"
        return name, pg.create_database(self._server, name, template=self._template)

    def _fill(self) -> None:
        while not self._stopping.is_set():
            try:
                clone = self._make()
            except Exception:  # the server away for a moment (a test restarting it)
                self._stopping.wait(0.2)
                continue
            while not self._stopping.is_set():
                try:
                    self._ready.put(clone, timeout=0.2)
                    break
                except queue.Full:
                    continue
            else:
                pg.drop_database(self._server, clone[0])
