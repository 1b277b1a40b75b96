"""The local SMTP sink `make run` starts: a real SMTP server whose mails land as files."""

from __future__ import annotations

import email
import email.policy
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from infra.local.supervise import free_port


def test_a_mail_sent_to_the_sink_is_a_file_a_person_can_read(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "mail"
    argv = [sys.executable, "-m", "infra.emulators.smtp", "--port", str(port), "--out", str(out)]
    sink = subprocess.Popen(argv, stdout=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.1)
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = (
            "[syncq] Falha",
            "a@x.example",
            "b@y.example",
        )
        message.set_content("A sincronização falhou.")
        with smtp:
            smtp.send_message(message)
        [kept] = list(out.glob("*.eml"))
        read = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
        assert read["Subject"] == "[syncq] Falha"
        body = read.get_body(("plain",))
        assert body is not None and "falhou" in body.get_content()
        sink.send_signal(signal.SIGINT)  # Ctrl-C: a quick, clean stop
        assert sink.wait(5) == 0
    finally:
        if sink.poll() is None:
            sink.terminate()
            sink.wait(10)
