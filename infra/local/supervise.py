"""The local stack's child processes: ports checked first, logs kept short, a death named.

`make run` starts about eight processes. Each one's output goes to `<data>/<name>.log`
(the previous run's is kept as `<name>.log.1`, older ones are dropped, so the folder does
not grow run after run). The stack watches them all the time: when one exits, it says
which, shows the end of its log and stops the others, instead of carrying on half-dead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GRACE_S = 10.0
TAIL_LINES = 20


class StackFailed(Exception):
    """The stack cannot (or can no longer) run; the message says why and what to do."""


# -- ports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortClaim:
    """A port a part of the stack listens on, and the variable that moves it."""

    port: int
    owner: str
    variable: str


def parse_port(raw: str, variable: str) -> int:
    """A port number from an environment variable, or StackFailed naming the variable."""
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise StackFailed(f"{variable} must be a port number from 1 to 65535, not {raw!r}.")
    return port


def port_taken(host: str, port: int) -> bool:
    """Whether another program listens on host:port (TIME_WAIT leftovers do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as our servers bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


# A stack started on free ports (the tests, the chaos run, the benchmarks) takes them from
# below the kernel's range for outgoing connections (32768 and up on Linux), so a
# connection opened meanwhile never takes a port before its server binds it.
FREE_PORTS = range(20000, 32768)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports nothing was bound to a moment ago; they are held together
    while chosen, so none is handed out twice."""
    held: list[socket.socket] = []
    tries = 100 * (count + 1)
    try:
        while len(held) < count:
            if (tries := tries - 1) < 0:
                raise StackFailed(f"no {count} free ports on {host} in {FREE_PORTS}.")
            sock = socket.socket()
            try:
                sock.bind((host, random.choice(FREE_PORTS)))
            except OSError:  # taken: try another
                sock.close()
            else:
                held.append(sock)
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port nothing was bound to a moment ago."""
    return free_ports(1, host)[0]


def check_ports(
    claims: Sequence[PortClaim], host: str = "127.0.0.1", command: str = "make run"
) -> None:
    """StackFailed naming every busy or doubly-claimed port and the variable that moves it
    (for `command`, the one that starts them)."""
    problems: list[str] = []
    counts = Counter(c.port for c in claims)
    for port, count in sorted(counts.items()):
        if count > 1:
            names = " and ".join(f"{c.variable} ({c.owner})" for c in claims if c.port == port)
            problems.append(f"port {port} is given to both {names}; give each its own port.")
    for claim in claims:
        move = f"move the {claim.owner} with {claim.variable}=<free port> {command}."
        try:
            taken = counts[claim.port] == 1 and port_taken(host, claim.port)
        except OSError as exc:
            problems.append(
                f"port {claim.port} ({claim.owner}) cannot be used ({exc.strerror}): {move}"
            )
            continue
        if taken:
            problems.append(
                f"port {claim.port} ({claim.owner}) is already in use by another program: stop"
                f" it, or {move}"
            )
    if problems:
        raise StackFailed("\n".join(problems))


# -- logs -------------------------------------------------------------------------------------


def rotate_log(path: Path) -> None:
    """Move the previous run's log aside as `<name>.1` (dropping the one before it)."""
    if path.exists() and path.stat().st_size > 0:
        path.replace(path.with_name(path.name + ".1"))


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a text file (empty when it does not exist)."""
    try:
        with path.open("rb") as f:
            kept = deque(f, maxlen=lines)
    except FileNotFoundError:
        return []
    return [line.decode("utf-8", "replace").rstrip("\n") for line in kept]


# -- children ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """One process of the stack, and the log its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def exit_description(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            return f"was killed by signal {-code}"
        return f"exited with code {code}"


class Children:
    """The stack's processes, each started with a fresh log, and which of them exited."""

    def __init__(self, log_dir: Path, cwd: Path) -> None:
        self._log_dir = log_dir
        self._cwd = cwd
        self.started: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        """Start one process, its output (stdout and stderr) in `<log_dir>/<name>.log`."""
        log = self._log_dir / f"{name}.log"
        raise_if_stopping()  # none started once the stack is stopping
        rotate_log(log)
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            try:
                # The kernel signals the child when the *thread* that started it ends: only
                # the main thread's children may die with us (chaos restarts workers from
                # other threads, which end long before the process does).
                main = threading.current_thread() is threading.main_thread()
                with stops_deferred():  # until it is in the list the shutdown stops
                    proc = subprocess.Popen(  # noqa: S603 - our own argv
                        list(argv), env=env, cwd=self._cwd, stdout=out, stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent if main else _answer_stop_signals,  # noqa: PLW1509 - see there
                    )  # fmt: skip
                    child = Child(name, proc, log)
                    self.started.append(child)
            except OSError as exc:
                raise StackFailed(f"could not start {name} ({argv[0]}): {exc.strerror}.") from exc
        raise_if_stopping()  # a stop that came while it started: now it is shut down too
        return child

    def first_dead(self) -> Child | None:
        """A child that has exited, if any."""
        return next((c for c in self.started if c.proc.poll() is not None), None)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None  # loaded before any fork


_SIG_DFL = 0  # signal(2)'s SIG_DFL


def _answer_stop_signals() -> None:
    """In the child, before it runs: the stop signals at their defaults. One the stack
    ignores (it is stopping) would stay ignored across exec, the parent-death signal too."""
    if _LIBC is not None:
        for sig in STOP_SIGNALS:
            _LIBC.signal(sig, _SIG_DFL)


def _die_with_parent() -> None:
    """In the child, before it runs: on Linux, get SIGTERM when the stack dies, even by
    SIGKILL, so no emulator or gateway is left holding its port for the next `make run`.
    (Calls into an already loaded libc: no import, no lock another thread may hold.)"""
    _answer_stop_signals()
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def death_report(child: Child, log_label: str) -> str:
    """What to tell the user when a child exited: who, how, and the end of its log."""
    head = f"{child.name} (pid {child.proc.pid}) {child.exit_description()}."
    return log_report(head, child.log, log_label)


def log_report(head: str, log: Path, log_label: str) -> str:
    """`head`, then the end of a process's log (or that it is empty)."""
    lines = tail(log)
    if not lines:
        return f"{head} Its log {log_label} is empty."
    return f"{head} The last lines of {log_label}:\n{quoted(lines)}"


def quoted(lines: Iterable[str]) -> str:
    """Lines of a process's output, set off from our own words."""
    return "\n".join(f"  | {line}" for line in lines)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal closed


def _ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


# Set by the first stop signal. Its KeyboardInterrupt can be lost (Python drops an exception
# raised inside a finalizer, printing "Exception ignored"), and later signals are ignored:
# the stack checks this too, or it would run on, deaf to every signal.
STOPPING = threading.Event()


# Above 0 while a process is being started: see stops_deferred.
_deferring = 0


def _stop_once(signum: int, frame: object) -> None:
    # Ignore the next ones first: `make` forwards a group's SIGTERM, so a second one
    # arrives while we are stopping, and must not interrupt the shutdown.
    _ignore_stop_signals()
    STOPPING.set()
    if not _deferring:
        raise KeyboardInterrupt


@contextmanager
def stops_deferred() -> Iterator[None]:
    """Within, a stop signal is only noted (STOPPING), for the caller to raise with
    raise_if_stopping() once what it started is in hand. Python runs its own hooks around
    fork() (logging's lock release): an interrupt raised inside one is dropped with
    "Exception ignored" and a traceback on stderr (the stop itself is not lost)."""
    global _deferring  # noqa: PLW0603 - one main thread takes signals; a plain counter
    if threading.current_thread() is not threading.main_thread():
        yield  # signals interrupt the main thread only: another's start must not defer them
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


def raise_if_stopping() -> None:
    """KeyboardInterrupt again when a stop signal came (its own may have been lost)."""
    if STOPPING.is_set():
        raise KeyboardInterrupt


def trap_stop_signals() -> None:
    """The first Ctrl-C or SIGTERM raises KeyboardInterrupt; later ones are ignored."""
    STOPPING.clear()  # a new trap is a new stack: a stop before it is not its own
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop_once)


def shutdown(procs: Iterable[subprocess.Popen[bytes]], grace_s: float = GRACE_S) -> None:
    """Terminate every process, wait for each, and kill those still running after grace_s.

    Idempotent under signals: SIGINT/SIGTERM are ignored from here on, so a repeated
    Ctrl-C or a forwarded SIGTERM cannot leave a child behind.
    """
    _ignore_stop_signals()
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
