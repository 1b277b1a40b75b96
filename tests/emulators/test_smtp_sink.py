"""The local SMTP sink `make run` starts: a real SMTP server whose mails land as files."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

from infra.local.supervise import free_port


@contextmanager
def sink(out: Path, *args: str) -> Iterator[int]:
    """The sink running on a free port (its port), stopped as Ctrl-C stops it."""
    port = free_port()
    argv = [sys.executable, "-m", "infra.emulators.smtp", "--port", str(port), "--out", str(out)]
    process = subprocess.Popen([*argv, *args], stdout=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
                break
            except OSError:
                assert time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.1)
        yield port
        process.send_signal(signal.SIGINT)  # Ctrl-C: a quick, clean stop
        assert process.wait(5) == 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "a@x.example", "b@y.example"
    message.set_content("A sincronização falhou.")
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(message)


def subjects(out: Path) -> set[str]:
    read = (email.message_from_bytes(p.read_bytes()) for p in out.glob("*.eml"))
    return {str(m["Subject"]) for m in read}


def test_a_mail_sent_to_the_sink_is_a_file_a_person_can_read(tmp_path: Path) -> None:
    out = tmp_path / "mail"
    with sink(out) as port:
        send(port, "[syncq] Falha")
        [kept] = list(out.glob("*.eml"))
        read = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
        assert read["Subject"] == "[syncq] Falha"
        body = read.get_body(("plain",))
        assert body is not None and "falhou" in body.get_content()


def test_only_the_newest_mails_are_kept_run_after_run(tmp_path: Path) -> None:
    """`.data/mail/` kept every alert of every `make run`: only the newest `--keep` stay,
    whichever run wrote them."""
    out = tmp_path / "mail"
    out.mkdir()
    for n in (1, 2):  # an earlier run's mails
        old = out / f"20260101-000000-{n:06d}.eml"
        old.write_bytes(f"Subject: old {n}\n\nx\n".encode())
        os.utime(old, (1_700_000_000 + n, 1_700_000_000 + n))
    with sink(out, "--keep", "3") as port:
        assert subjects(out) == {"old 1", "old 2"}
        for n in range(4):
            send(port, f"new {n}")
        assert subjects(out) == {"new 1", "new 2", "new 3"}
    with sink(out, "--keep", "1"):  # a smaller limit applies as the sink starts
        assert subjects(out) == {"new 3"}
