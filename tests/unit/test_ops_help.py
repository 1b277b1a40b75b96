"""The ops CLI's top-level --help reads as help for its users, one sentence per command."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from infra.ops.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _commands(parser: argparse.ArgumentParser) -> dict[str, str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: str(choice.help) for choice in sub._choices_actions}


def test_every_command_is_described_in_a_sentence() -> None:
    commands = _commands(build_parser())
    assert {"migrate", "token", "jobs", "sweep", "emulators", "export"} <= set(commands)
    for name, text in commands.items():
        assert text[0].isupper() and text.endswith("."), (name, text)
        assert len(text.split()) >= 5, (name, text)


def test_the_help_speaks_to_users_not_to_developers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for internal in ("COMMAND_MODULES", "register(", "handler", "{migrate,"):
        assert internal not in text
    assert "make run" in text and "--help" in text and "token --demo acme-admin" in text


def test_a_reader_that_goes_away_ends_it_quietly() -> None:
    """`python -m infra.ops token ... | head`: the pipe closes under it; no traceback."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the CLI writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "infra.ops", "token", "--service"],
            stdout=write, stderr=subprocess.PIPE, cwd=ROOT, timeout=60, check=False,
            env={**os.environ, "JWT_SECRET": "a-test-secret-of-at-least-32-bytes-long!"},
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == b"", done.stderr.decode()


def test_with_no_database_configured_a_command_refuses_instead_of_using_a_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No DATABASE_URL and no local stack's settings: the settings' default server (which
    may be some other program's PostgreSQL) must not get the migrations or the demo data."""
    from infra.ops.__main__ import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    for argv in (["migrate"], ["seed-demo"], ["jobs", "list", "--tenant", "acme"]):
        assert main(argv) == 2, argv
        assert "No database: set DATABASE_URL" in capsys.readouterr().err


def test_the_emulators_that_need_a_database_refuse_without_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The remote Gestão Scouter projects create databases and roles where they start."""
    from infra.ops.__main__ import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    for argv in (["emulators"], ["emulators", "--only", "onecode", "gestao-scouter-2"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "No database for gestao-scouter" in err and "--only" in err, err
    # a stopped stack's URL, which .data/local.env keeps: nothing answers there
    port = _closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:pw@127.0.0.1:{port}/syncq")
    assert main(["emulators", "--only", "gestao-scouter"]) == 2
    err = capsys.readouterr().err
    assert f"No database answers at 127.0.0.1:{port}/syncq" in err and "pw" not in err, err


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def test_a_database_that_does_not_answer_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line saying where, never the password; a cron running `ops sweep` must see the
    failure too (it exited 0, every step "failed"), and the pool's reconnect warnings must
    not bury the line."""
    from infra.ops.__main__ import main
    from shared import db
    from shared.settings import reload_settings

    port = _closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:pw@127.0.0.1:{port}/syncq")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_S", "1")
    reload_settings()
    try:
        for argv in (["migrate"], ["jobs", "list", "--tenant", "acme"], ["sweep"]):
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert f"Cannot reach the database at 127.0.0.1:{port}/syncq" in err, err
            assert "pw" not in err and len(err.strip().splitlines()) == 1, err
    finally:
        db.close_pool()
        monkeypatch.undo()
        reload_settings()


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres:s3cret%zzpw@127.0.0.1:5432/x", "postgresql://u:s3cret@[::1:5432/x"],
)
def test_a_database_url_that_does_not_parse_is_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    """An unescaped % in a password is common; psycopg's own error quotes the URL."""
    from infra.ops.__main__ import main
    from shared.settings import get_settings, reload_settings

    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        for argv in (["migrate"], ["jobs", "list", "--tenant", "acme"]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert "DATABASE_URL: not a valid PostgreSQL connection string." in err, err
            assert "s3cret" not in err and "Traceback" not in err
    finally:
        monkeypatch.undo()
        reload_settings()


def test_token_refuses_a_lifetime_that_is_already_over_and_an_empty_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.ops.__main__ import main
    from shared.settings import get_settings

    for ttl in ("0", "-100", "x"):
        with pytest.raises(SystemExit) as exit_:
            main(["token", "--service", "--ttl", ttl])
        assert exit_.value.code == 2
        assert "argument --ttl" in capsys.readouterr().err
    monkeypatch.setenv("JWT_SECRET", "")
    get_settings.cache_clear()
    try:
        assert main(["token", "--service"]) == 2
        assert "No JWT_SECRET" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_a_port_variable_that_is_no_port_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`emulators` and `seed-demo` read the stack's ports (`<NAME>_PORT`): a value that is
    no port is said as `make run` says it, naming the variable, exit 2 and nothing started."""
    from infra.ops.__main__ import main
    from shared.settings import reload_settings

    monkeypatch.setenv("ONECODE_PORT", "abc")
    reload_settings()
    try:
        assert main(["emulators", "--only", "onecode"]) == 2
        err = capsys.readouterr().err
        assert "ONECODE_PORT must be a port number from 1 to 65535, not 'abc'." in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    finally:
        monkeypatch.undo()
        reload_settings()


def test_the_banner_never_shows_the_database_password(capsys: pytest.CaptureFixture[str]) -> None:
    """`make run` keeps DATABASE_URL's password out of every error; its banner (a terminal's
    scrollback, a CI log) printed the whole URL."""
    from infra.local import stack

    url = "postgresql://postgres:s3cret@127.0.0.1:5432/syncq"
    stack._banner(stack.StackContext(stack.Ports(), url), lambda **_: "a-token")
    out = capsys.readouterr().out
    assert "syncq local stack is up." in out
    assert "s3cret" not in out, out
    assert "127.0.0.1" in out and "syncq" in out


def test_no_emulator_gets_the_database_password_on_its_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any local user reads a process's argv (`ps`): the remote projects name their database,
    and take the server and credentials from DATABASE_URL in their environment."""
    from infra.emulators.postgrest.__main__ import _database_url
    from infra.local import stack

    url = "postgresql://postgres:s3cret@127.0.0.1:5432/syncq"
    ctx = stack.StackContext(stack.Ports(), url)
    for name, build in stack.EMULATORS.items():
        assert not [a for a in build(ctx) if "s3cret" in a], name
    monkeypatch.setenv("DATABASE_URL", url)
    remote = stack.EMULATORS["gestao-scouter-2"](ctx)
    chosen = conninfo_to_dict(_database_url(None, remote[remote.index("--database") + 1]))
    assert chosen["dbname"] == "gestao_scouter_2" and chosen["password"] == "s3cret"


def test_an_emulator_port_in_use_is_named_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`emulators` on a port another program holds (say a running `make run`'s) names the
    port and the variable that moves it, as `make run` does, and starts nothing: it printed
    the curl lines for that port as if it were up, then only "an emulator exited"."""
    from infra.ops.__main__ import main
    from shared.settings import reload_settings

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        monkeypatch.setenv("ONECODE_PORT", str(port))
        reload_settings()
        try:
            assert main(["emulators", "--only", "onecode"]) == 2
        finally:
            monkeypatch.undo()
            reload_settings()
    out, err = capsys.readouterr()
    assert f"port {port} (onecode emulator) is already in use" in err, err
    assert "ONECODE_PORT=<free port> python -m infra.ops emulators" in err, err
    assert "curl" not in out and "Traceback" not in err, out


def test_the_local_stacks_settings_are_not_adopted_for_another_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ops with DATABASE_URL naming another database (a staging one, say) took the local
    stack's JWT_SECRET and emulator ports for it: tokens minted with the local secret, demo
    data seeded against local emulators. The file fills gaps for its own stack only."""
    from infra.local import stack

    monkeypatch.setattr(stack, "DATA", tmp_path)
    local = "postgresql://postgres@/syncq?host=/tmp/x"
    stack.write_local_env({"DATABASE_URL": local, "JWT_SECRET": "local-secret"})
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://staging.example/syncq")
    stack.load_local_env()
    assert "JWT_SECRET" not in os.environ
    monkeypatch.setenv("DATABASE_URL", local)  # its own stack's database: the gaps filled
    stack.load_local_env()
    assert os.environ["JWT_SECRET"] == "local-secret"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("JWT_SECRET")
    stack.load_local_env()  # no database named: the local stack's
    assert (os.environ["DATABASE_URL"], os.environ["JWT_SECRET"]) == (local, "local-secret")


def test_each_refused_setting_is_one_line_naming_its_variable_never_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the CLI says for settings it cannot work with: a line per variable, as
    `Invalid setting NAME: why.`, exit 2; a secret-looking value is never quoted back."""
    from infra.ops.__main__ import main
    from shared.settings import get_settings, reload_settings

    monkeypatch.setenv("STALE_AFTER_S", "0")
    monkeypatch.setenv("SMTP_PORT", "s3cret-looking")
    monkeypatch.setenv("RUNNINGHUB_SWEEP_BATCH", "0")
    get_settings.cache_clear()
    try:
        assert main(["token", "--service"]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.splitlines() == [
            "Invalid setting STALE_AFTER_S: Input should be greater than 0.",
            "Invalid setting SMTP_PORT: Input should be a valid integer, unable to parse string"
            " as an integer.",
            "Invalid setting RUNNINGHUB_SWEEP_BATCH: Input should be greater than or equal to 1.",
        ], err
        assert "s3cret" not in err
    finally:
        monkeypatch.undo()
        reload_settings()
