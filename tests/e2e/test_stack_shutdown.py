"""`make run`'s shutdown: every child stops even when a second signal arrives meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from infra.local import supervise

# Ignores SIGTERM, and answers it the way `make` does: by forwarding SIGTERM (and a
# Ctrl-C for good measure) to the stack, which is then already stopping.
STUBBORN = """
import os, signal, time
def forward(*_):
    os.kill(os.getppid(), signal.SIGTERM)
    os.kill(os.getppid(), signal.SIGINT)
signal.signal(signal.SIGTERM, forward)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A child that stops on SIGTERM and one that has to be killed (listed first)."""
    saved = {sig: signal.getsignal(sig) for sig in supervise.STOP_SIGNALS}
    stubborn = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)  # noqa: S603
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == b"ready\n"  # its handler is in place
    yield [stubborn, plain]
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    supervise.STOPPING.clear()  # this process is no stack that was stopped
    for p in (stubborn, plain):
        p.kill()
        p.wait()
    stubborn.stdout.close()


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT, None], ids=str)
def test_second_signal_does_not_interrupt_shutdown(
    children: list[subprocess.Popen[bytes]], first: signal.Signals | None
) -> None:
    """First signal (or a child exiting, None) starts the shutdown; the forwarded ones don't stop it."""
    stubborn, plain = children
    supervise.trap_stop_signals()
    if first is not None:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), first)
            time.sleep(10)  # the handler raises in the main thread first
    try:
        supervise.shutdown(children, grace_s=1.0)
    except KeyboardInterrupt:
        pytest.fail("a signal during the shutdown interrupted it")
    assert plain.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
