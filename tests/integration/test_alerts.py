"""Failure alerts on real PostgreSQL: the outbox written with the job's end, throttling,
delivery by SMTP (a real local server), SES (moto) and a signed webhook, exactly once under
duplicate sweeps and a crash, and the schedule paused after N failures."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import psycopg
import pytest
from aiosmtpd.controller import Controller

from infra.local.supervise import free_port
from shared import db
from shared.alerts import channels
from shared.alerts import kind as alerts
from shared.alerts.message import Composed
from shared.dispatch import RecordingDispatcher, get_dispatcher
from shared.errors import UpstreamError
from shared.jobs import store as engine
from shared.jobs.drain import drain as drain_kind
from shared.jobs.lease import Lease
from shared.jobs.sweep import rescue
from shared.providers import PROVIDERS
from shared.settings import get_settings
from tests.conftest import Configure
from tests.providers_for_tests import ScriptedProvider
from tests.support import (
    TenantFixture,
    call,
    drain,
    function_client,
    rows,
    seed_tenant,
    terminate_lock_waiters,
)

pytestmark = pytest.mark.db

WEBHOOK_SECRET = "alert-webhook-secret-for-tests-0123456789"


class Mailbox:
    """aiosmtpd handler: every message the server accepted."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse: str | None = None  # the answer to every RCPT TO, when set

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def read(mail: Any) -> str:
    """A received e-mail's subject and text, decoded."""
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return f"{message['Subject']}\n{body.get_content()}"


@pytest.fixture
def mailbox(configure: Configure) -> Iterator[Mailbox]:
    """A real SMTP server on a free loopback port, and syncq's alerts pointed at it."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    configure(ALERT_EMAIL_TRANSPORT="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
              ALERT_BACKOFF_BASE_S="0", ALERT_BACKOFF_CAP_S="0")  # fmt: skip
    yield box
    controller.stop()


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch, configure: Configure) -> ScriptedProvider:
    # Retries due at once: a run's worker claims each one itself. With a backoff of a few
    # ms, a slow worker could find the retry due only when it counts what is left, and wake
    # a sweep of every kind that delivers the alert before the test's own delivery.
    configure(BACKOFF_BASE_S="0", BACKOFF_CAP_S="0")
    provider = ScriptedProvider(failures=10_000)
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    return provider


def settings(tenant: TenantFixture, **body: Any) -> Any:
    return function_client("integration-alerts").put(
        "/", json={"tenant_id": str(tenant.id), **body},
        headers={"Authorization": f"Bearer {tenant.admin_token}"},
    )  # fmt: skip


def run_to_the_end(tenant: TenantFixture, recorder: RecordingDispatcher) -> str:
    """Click "Executar" and let the job run every attempt; its final status."""
    answer = call("run-integration", {"tenant_id": str(tenant.id), "provider_slug": "scripted"},
                  token=tenant.admin_token)  # fmt: skip
    assert answer.status_code == 202, answer.get_json()
    drain(recorder)
    job_id = answer.get_json()["job_id"]
    [job] = rows(DB_URL[0], "SELECT status FROM integration_jobs WHERE id = %s", job_id)
    status: str = job["status"]
    return status


def deliver() -> list[dict[str, Any]]:
    return drain_kind(alerts.KIND, budget_s=30, batch=10).processed


def rows_of(sql: str) -> list[dict[str, Any]]:
    return rows(DB_URL[0], sql)


def outbox() -> list[dict[str, Any]]:
    return rows_of("SELECT * FROM alert_outbox ORDER BY created_at, id")


DB_URL: list[str] = []  # this test's database (set by `acme`), for the helpers above


@pytest.fixture
def acme(database_url: str) -> Iterator[TenantFixture]:
    DB_URL[:] = [database_url]
    yield seed_tenant(database_url, "acme", providers={"scripted": {}})
    DB_URL.clear()


def test_failing_reminded_recovered_each_sent_once_by_smtp(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    assert settings(acme, emails=["ops@acme.example"]).status_code == 200
    assert run_to_the_end(acme, recorder) == "error"
    assert [a["event"] for a in outbox()] == ["failing"]
    deliver()
    [mail] = mailbox.messages
    assert mail.rcpt_tos == ["ops@acme.example"]
    text = read(mail)
    assert "Falha na integração" in text and "scripted failure" in text
    assert run_to_the_end(acme, recorder) == "error"  # the 2nd failure: nothing new
    assert [a["event"] for a in outbox()] == ["failing"]
    assert run_to_the_end(acme, recorder) == "error"  # the 3rd: a reminder
    assert [a["event"] for a in outbox()] == ["failing", "reminder"]
    failing.failures = 0
    assert run_to_the_end(acme, recorder) == "success"
    deliver()
    assert [a["event"] for a in outbox()] == ["failing", "reminder", "recovered"]
    assert [a["status"] for a in outbox()] == ["sent"] * 3
    assert len(mailbox.messages) == 3 and "voltou a funcionar" in read(mailbox.messages[2])
    assert deliver() == [] and len(mailbox.messages) == 3
    [integration] = rows_of("SELECT consecutive_failures FROM tenant_integrations")
    assert integration["consecutive_failures"] == 0


def test_a_flapping_integration_alerts_once_until_a_failure_persists(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """Failing and succeeding by turns: the first failure and its recovery alert; a new
    failure within a day of that raises nothing (nor does its recovery) until it persists:
    then it is told as `failing` (a tenant may not take reminders), and its recovery too."""
    assert settings(acme, emails=["ops@acme.example"]).status_code == 200
    for i in range(10):
        failing.runs, failing.failures = 0, (10_000 if i % 2 == 0 else 0)
        assert run_to_the_end(acme, recorder) == ("error" if i % 2 == 0 else "success")
    assert [a["event"] for a in outbox()] == ["failing", "recovered"]
    failing.failures = 10_000
    for _ in range(3):
        assert run_to_the_end(acme, recorder) == "error"
    failing.failures = 0
    assert run_to_the_end(acme, recorder) == "success"
    assert [a["event"] for a in outbox()] == ["failing", "recovered", "failing", "recovered"]
    assert [a["failures"] for a in outbox()][2] == 3  # told when it persisted
    # A day after the last alert, a first failure alerts at once again.
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '25 hours'")
    failing.failures = 10_000
    assert run_to_the_end(acme, recorder) == "error"
    assert [a["event"] for a in outbox()][-1] == "failing"


def test_a_first_failure_within_a_day_of_the_last_alert_raises_none(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """The flapping window is a whole day: a new failure 23 hours after the last alert
    stays quiet (25 hours after it, it alerts: the test above)."""
    assert settings(acme, emails=["ops@acme.example"]).status_code == 200
    failing.runs, failing.failures = 0, 10_000
    assert run_to_the_end(acme, recorder) == "error"
    failing.runs, failing.failures = 0, 0
    assert run_to_the_end(acme, recorder) == "success"
    assert [a["event"] for a in outbox()] == ["failing", "recovered"]
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '23 hours'")
    failing.runs, failing.failures = 0, 10_000
    assert run_to_the_end(acme, recorder) == "error"
    assert [a["event"] for a in outbox()] == ["failing", "recovered"]


def test_the_last_reminder_then_a_daily_digest_at_most(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """By default the 10th failure in a row is reminded; past it, a failure raises a
    digest once a day, not one alert per failure."""
    assert settings(acme, emails=["ops@acme.example"]).status_code == 200
    with psycopg.connect(DB_URL[0]) as conn:  # told at its 3rd failure, an hour ago
        conn.execute(
            "UPDATE tenant_integrations SET consecutive_failures = 9, failure_alerted = true,"
            " last_alert_at = now() - interval '1 hour'"
        )
    failing.runs, failing.failures = 0, 10_000
    assert run_to_the_end(acme, recorder) == "error"
    assert [(a["event"], a["failures"]) for a in outbox()] == [("reminder", 10)]
    for _ in range(2):
        assert run_to_the_end(acme, recorder) == "error"
    assert len(outbox()) == 1
    with psycopg.connect(DB_URL[0]) as conn:  # a day is not yet over: still no digest
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '23 hours'")
    assert run_to_the_end(acme, recorder) == "error"
    assert len(outbox()) == 1
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '25 hours'")
    assert run_to_the_end(acme, recorder) == "error"
    assert [(a["event"], a["failures"]) for a in outbox()] == [("reminder", 10), ("digest", 14)]


@pytest.mark.parametrize(
    ("answer", "retryable"), [("550 5.1.1 No such user", False), ("450 4.2.1 Try later", True)]
)
def test_recipients_the_mail_server_refuses_for_good_are_not_retried(
    mailbox: Mailbox, answer: str, retryable: bool
) -> None:
    mailbox.refuse = answer
    alert = Composed(subject="Falha", text="texto", payload={})
    with pytest.raises(UpstreamError) as refused:
        channels.send_email(get_settings(), "a1", ["gone@acme.example"], alert)
    assert refused.value.retryable is retryable and "gone@" not in refused.value.message
    assert mailbox.messages == []


def test_duplicate_sweeps_and_a_crash_before_the_send_deliver_each_alert_once(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    settings(acme, emails=["ops@acme.example"])
    run_to_the_end(acme, recorder)
    # A sender claims the alert and dies before sending: its lease goes stale.
    with db.transaction() as conn:
        [claimed] = engine.claim(conn, alerts.TABLE)
    assert claimed["status"] == "running" and mailbox.messages == []
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute("UPDATE alert_outbox SET heartbeat_at = now() - interval '1 hour'")
    assert rescue(alerts.KIND) == 1
    threads = [threading.Thread(target=deliver) for _ in range(6)]  # six sweeps at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(mailbox.messages) == 1
    [alert] = outbox()
    assert (alert["status"], alert["delivered"], alert["attempts"]) == ("sent", ["email"], 2)


def test_an_alert_whose_sender_died_before_any_send_is_not_sent_once_its_channels_go(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A sender dies before sending; the tenant then drops its channels. Nothing went out:
    the rescue does not call the alert `sent`, and it ends `suppressed`."""
    settings(acme, emails=["ops@acme.example"])
    run_to_the_end(acme, recorder)
    with db.transaction() as conn:
        [claimed] = engine.claim(conn, alerts.TABLE)
    assert claimed["status"] == "running"
    assert settings(acme, emails=[]).status_code == 200
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute("UPDATE alert_outbox SET heartbeat_at = now() - interval '1 hour'")
    assert rescue(alerts.KIND) == 1
    assert outbox()[0]["status"] != "sent"
    with psycopg.connect(DB_URL[0]) as conn:  # the backoff has passed
        conn.execute("UPDATE alert_outbox SET run_after = now()")
    deliver()
    [alert] = outbox()
    assert (alert["status"], alert["delivered"]) == ("suppressed", [])
    assert mailbox.messages == []


def deliver_over_ses(
    acme: TenantFixture, configure: Configure, monkeypatch: pytest.MonkeyPatch, emails: list[str]
) -> tuple[dict[str, Any], Any]:
    """A failed run's alert to `emails` over Amazon SES (moto): the drain's report and the
    one message SES sent."""
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    configure(ALERT_EMAIL_TRANSPORT="ses", ALERT_EMAIL_FROM="alertas@syncq.example")
    recorder = get_dispatcher()  # the one configure() just made
    assert isinstance(recorder, RecordingDispatcher)
    settings(acme, emails=emails)
    with mock_aws():
        channels._ses_client.cache_clear()
        try:
            import boto3

            boto3.client("ses", region_name="us-east-1").verify_email_identity(
                EmailAddress="alertas@syncq.example"
            )
            run_to_the_end(acme, recorder)
            [report] = deliver()
            [sent] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        finally:
            channels._ses_client.cache_clear()
    return report, sent


def test_ses_delivers_through_boto3(
    acme: TenantFixture, configure: Configure, failing: ScriptedProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    emails = ["ops@acme.example", "cto@acme.example"]
    report, sent = deliver_over_ses(acme, configure, monkeypatch, emails)
    assert report["status"] == "sent"
    assert set(sent.destinations) == {"cto@acme.example", "ops@acme.example"}
    assert "Falha na integração" in str(
        email.message_from_string(sent.raw_data, policy=email.policy.default)["Subject"]
    )


def test_ses_mails_the_addresses_it_can_take_and_fails_on_the_one_it_cannot(
    acme: TenantFixture, configure: Configure, failing: ScriptedProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """SES has no SMTPUTF8: a name before the @ that is not ASCII makes it refuse the whole
    message, so one `joão@` among the recipients cost every other one the alert. The others
    get it; the alert fails on that address, told by its count alone."""
    emails = ["ops@acme.example", "joão@acme.example", "cto@acme.example"]
    report, sent = deliver_over_ses(acme, configure, monkeypatch, emails)
    assert report["status"] == "failed"
    assert set(sent.destinations) == {"cto@acme.example", "ops@acme.example"}
    headers = email.message_from_string(sent.raw_data, policy=email.policy.default)
    assert str(headers["To"]) == "cto@acme.example, ops@acme.example"
    [alert] = outbox()
    assert (alert["status"], alert["mailed"]) == ("failed", sorted(set(sent.destinations)))
    assert "1 of 3" in alert["error_message"] and "jo" not in alert["error_message"]


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    answer: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(Hook.answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook(configure: Configure) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    Hook.received, Hook.answer = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configure(ALERT_WEBHOOK_SECRET=WEBHOOK_SECRET, ALERT_WEBHOOK_ALLOW_HTTP="true",
              ALERT_BACKOFF_BASE_S="60", ALERT_BACKOFF_CAP_S="60")  # fmt: skip
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_the_webhook_is_signed_slack_compatible_and_retried_until_it_answers(
    acme: TenantFixture, hook: str, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    answer = settings(acme, webhook_url=hook, events=["failing", "recovered"])
    assert answer.status_code == 200
    key = answer.get_json()["webhook_signing_key"]
    run_to_the_end(acme, recorder)
    Hook.answer = 503
    [first] = deliver()
    assert first["status"] == "pending"  # retried later, with the engine's backoff
    [waiting] = outbox()
    assert waiting["run_after"] > waiting["updated_at"] and waiting["delivered"] == []
    with psycopg.connect(DB_URL[0]) as conn:  # the backoff has passed
        conn.execute("UPDATE alert_outbox SET run_after = now()")
    Hook.answer = 200
    [second] = deliver()
    assert second["status"] == "sent"
    assert len(Hook.received) == 2
    headers, body = Hook.received[-1]
    alert_id = outbox()[0]["id"]
    assert headers["Idempotency-Key"] == str(alert_id)
    stamp, mac = (part.split("=", 1)[1] for part in headers["X-Syncq-Signature"].split(","))
    expected = hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    payload = json.loads(body)
    assert (
        payload["text"].startswith("*Falha na integração")
        and payload["alert"]["event"] == "failing"
    )
    assert WEBHOOK_SECRET not in body.decode() and key not in body.decode()


def test_a_mail_server_refusing_for_good_does_not_keep_the_alert_from_the_webhook(
    acme: TenantFixture, mailbox: Mailbox, hook: str, failing: ScriptedProvider,
    recorder: RecordingDispatcher,
) -> None:  # fmt: skip
    mailbox.refuse = "550 5.1.1 No such user"
    assert settings(acme, emails=["gone@acme.example"], webhook_url=hook).status_code == 200
    run_to_the_end(acme, recorder)
    [report] = deliver()
    assert len(Hook.received) == 1
    [alert] = outbox()
    assert report["status"] == alert["status"] == "failed"  # the e-mail will not pass
    assert alert["delivered"] == ["webhook"] and "refused" in alert["error_message"]


def test_a_webhook_failing_for_a_while_is_retried_beside_a_mail_refused_for_good(
    acme: TenantFixture, mailbox: Mailbox, hook: str, failing: ScriptedProvider,
    recorder: RecordingDispatcher,
) -> None:  # fmt: skip
    """An e-mail that will never pass does not end the alert while the webhook's failure
    may pass: the webhook is retried, and then the alert ends failed for the e-mail."""
    mailbox.refuse = "550 5.1.1 No such user"
    Hook.answer = 503
    assert settings(acme, emails=["gone@acme.example"], webhook_url=hook).status_code == 200
    run_to_the_end(acme, recorder)
    [first] = deliver()
    assert first["status"] == "pending" and outbox()[0]["delivered"] == []
    with psycopg.connect(DB_URL[0]) as conn:  # the backoff has passed
        conn.execute("UPDATE alert_outbox SET run_after = now()")
    Hook.answer = 200
    [second] = deliver()
    [alert] = outbox()
    assert second["status"] == alert["status"] == "failed"
    assert alert["delivered"] == ["webhook"] and len(Hook.received) == 2


def test_a_channel_failing_for_a_while_is_retried_alone(
    acme: TenantFixture, mailbox: Mailbox, hook: str, failing: ScriptedProvider,
    recorder: RecordingDispatcher,
) -> None:  # fmt: skip
    """The e-mail goes out at once; the webhook answering 503 is retried, and the retry
    sends only the webhook."""
    Hook.answer = 503
    settings(acme, emails=["ops@acme.example"], webhook_url=hook)
    run_to_the_end(acme, recorder)
    [first] = deliver()
    assert first["status"] == "pending" and len(mailbox.messages) == 1
    assert outbox()[0]["delivered"] == ["email"]
    with psycopg.connect(DB_URL[0]) as conn:  # the backoff has passed
        conn.execute("UPDATE alert_outbox SET run_after = now()")
    Hook.answer = 200
    [second] = deliver()
    assert second["status"] == "sent" and len(mailbox.messages) == 1
    assert len(Hook.received) == 2 and outbox()[0]["delivered"] == ["email", "webhook"]


def test_an_alert_email_carries_its_origination_date(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """RFC 5322 (3.6) requires a Date header in every message: smtplib adds none, and a
    relay adds it for local senders only, so a mail without one is scored as spam
    (MISSING_DATE) or refused. It is the alert's time, the same on every retry."""
    assert settings(acme, emails=["ops@acme.example"]).status_code == 200
    run_to_the_end(acme, recorder)
    deliver()
    [mail] = mailbox.messages
    date = email.message_from_bytes(mail.content, policy=email.policy.default)["Date"]
    [alert] = outbox()
    assert date is not None and date.datetime == alert["created_at"].replace(microsecond=0)


def test_an_alert_email_is_identified_by_its_alert(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """The e-mail's Message-ID is the alert's id (its idempotency key): a retried delivery
    is the same message, which a mail client or relay shows once."""
    assert settings(acme, emails=["ops@acme.example"]).status_code == 200
    run_to_the_end(acme, recorder)
    deliver()
    [mail] = mailbox.messages
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    [alert] = outbox()
    assert message["Message-ID"] == f"<{alert['id']}@syncq>"


def test_an_alert_email_over_ses_carries_its_origination_date(
    acme: TenantFixture, configure: Configure, failing: ScriptedProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """SES asks the raw message to follow the e-mail standards and adds no Date itself."""
    _, sent = deliver_over_ses(acme, configure, monkeypatch, ["ops@acme.example"])
    date = email.message_from_string(sent.raw_data, policy=email.policy.default)["Date"]
    [alert] = outbox()
    assert date is not None and date.datetime == alert["created_at"].replace(microsecond=0)


def test_the_addresses_saved_are_the_addresses_mailed(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """The SMTP envelope is the saved list (given to the server, not re-read from the To
    line, where an address holding a comma or angle brackets named other recipients)."""
    saved = ["ops+alerts@acme.example", "o'brien@acme.example", "x.y@acme.example"]
    assert settings(acme, emails=saved).status_code == 200
    run_to_the_end(acme, recorder)
    deliver()
    [mail] = mailbox.messages
    assert sorted(mail.rcpt_tos) == sorted(saved)


def _named(hook: str) -> str:
    """The hook's URL under this machine's host name, which the resolver maps to it."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    if not all(ipaddress.ip_address(str(a)).is_loopback for a in addresses):
        pytest.skip("this machine's host name does not resolve to loopback")
    return hook.replace("127.0.0.1", name)


def test_a_host_name_is_connected_to_at_the_address_it_resolved_to(
    acme: TenantFixture, hook: str, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """Locally a name may reach this machine; the request still names the host it was for."""
    named = _named(hook)
    assert settings(acme, webhook_url=named).status_code == 200
    run_to_the_end(acme, recorder)
    [report] = deliver()
    assert report["status"] == "sent"
    [(headers, _)] = Hook.received
    assert headers["Host"] == named.split("/")[2]


def test_a_host_name_that_resolves_to_this_machine_is_refused_and_never_called(
    acme: TenantFixture, hook: str, configure: Configure, failing: ScriptedProvider,
    recorder: RecordingDispatcher,
) -> None:  # fmt: skip
    """Outside a local stack a webhook must not reach this machine or a private network,
    however its name is written: the check holds for what the name resolves to."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = _named(f"https://127.0.0.1:{listener.getsockname()[1]}/hook")
        assert settings(acme, webhook_url=url).status_code == 200
        run_to_the_end(acme, recorder)
        configure(ALERT_WEBHOOK_ALLOW_HTTP="false")  # after the run: it resets the dispatcher
        [report] = deliver()
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()
    assert report["status"] == "failed"  # not retried: the answer will not change
    [alert] = outbox()
    assert "resolves to this machine or a private network" in alert["error_message"]


def test_a_host_name_that_does_not_resolve_is_retried(
    acme: TenantFixture, hook: str, configure: Configure, failing: ScriptedProvider,
    recorder: RecordingDispatcher,
) -> None:  # fmt: skip
    assert settings(acme, webhook_url="https://hooks.syncq.invalid/a").status_code == 200
    run_to_the_end(acme, recorder)
    configure(ALERT_WEBHOOK_ALLOW_HTTP="false")  # after the run: it resets the dispatcher
    [report] = deliver()
    assert report["status"] == "pending"
    [alert] = outbox()
    assert "could not be resolved" in alert["error_message"]


def test_an_event_the_tenant_did_not_ask_for_is_suppressed(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    settings(acme, emails=["ops@acme.example"], events=["recovered"])
    run_to_the_end(acme, recorder)
    deliver()
    assert [a["status"] for a in outbox()] == ["suppressed"] and mailbox.messages == []


def test_an_alert_ends_under_one_log_message_with_its_status_beside_it(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher,
    logs: Callable[[], str],
) -> None:  # fmt: skip
    """Log lines are grouped by their message: the status goes in a field of its own ("alert
    sent" and "alert suppressed" were two messages), with the alert's labels."""
    settings(acme, emails=["ops@acme.example"], events=["recovered"])
    run_to_the_end(acme, recorder)
    deliver()
    [alert] = outbox()
    lines = [json.loads(line) for line in logs().splitlines()]
    [ended] = [line for line in lines if line["message"].startswith("alert ")]
    assert (ended["message"], ended["severity"], ended["status"]) == (
        "alert ended",
        "INFO",
        "suppressed",
    )
    assert ended["logging.googleapis.com/labels"]["alert_id"] == str(alert["id"])


def test_n_failures_pause_the_schedule_and_the_alert_says_so(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    settings(acme, emails=["ops@acme.example"], pause_schedule_after=2)
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, next_run_at, due_at)"
            " VALUES (%s, 'scripted', '0 3 * * *', now() + interval '1 day', now() + interval '1 day')",
            [acme.id],
        )
    run_to_the_end(acme, recorder)
    [schedule] = rows_of("SELECT enabled, paused_reason FROM integration_schedules")
    assert schedule["enabled"] is True
    run_to_the_end(acme, recorder)
    [schedule] = rows_of("SELECT enabled, paused_reason FROM integration_schedules")
    assert schedule["enabled"] is False and "2 falhas seguidas" in schedule["paused_reason"]
    events = [(a["event"], a["schedule_paused"]) for a in outbox()]
    assert events == [("failing", False), ("schedule_paused", True)]
    deliver()
    assert "agendamento" in read(mailbox.messages[-1]).lower()
    listed = function_client("integration-schedules").get(
        "/", query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.member_token}"},
    )  # fmt: skip
    [entry] = listed.get_json()["schedules"]
    assert entry["enabled"] is False and "falhas seguidas" in entry["paused_reason"]


def test_the_function_reads_for_members_and_writes_for_admins(acme: TenantFixture) -> None:
    client = function_client("integration-alerts")
    read = client.get("/", query_string={"tenant_id": str(acme.id)},
                      headers={"Authorization": f"Bearer {acme.member_token}"})  # fmt: skip
    assert read.status_code == 200
    body = read.get_json()
    assert body["settings"]["remind_at"] == [3, 10] and "webhook_signing_key" not in body
    denied = client.put("/", json={"tenant_id": str(acme.id), "emails": ["a@b.example"]},
                        headers={"Authorization": f"Bearer {acme.member_token}"})  # fmt: skip
    assert denied.status_code == 403
    for bad in ({"emails": ["not an email"]}, {"emails": ["a\ufeffb@c.example"]},
                {"emails": ["ops,cto@acme.example"]}, {"emails": ["a<b>c@acme.example"]},
                {"emails": ["ops (night)@acme.example"]}, {"emails": ["a;b@acme.example"]},
                {"emails": ['"x"@acme.example']}, {"emails": ["a..b@acme.example"]},
                {"emails": ["ops@acme.example\n"]},  # `$` would match before a final newline
                {"webhook_url": "ftp://x.example"},
                {"webhook_url": "https://[::1"}, {"webhook_url": "https://[zz]/"},
                {"webhook_url": "https://hooks.example:99999/a"},
                {"webhook_url": "https://hooks.example:0/"},
                {"webhook_url": "https://user:pw@hooks.example/a"},
                {"webhook_url": "https://hooks .example/a"}, {"webhook_url": "https://hooks\t.example/"},
                {"webhook_url": "https://hooks.example/a b"}, {"webhook_url": "https://-hooks.example/"},
                {"webhook_url": "https://hooks_.example/"}, {"webhook_url": "https://10.0.0.7/a"},
                {"webhook_url": "https://169.254.169.254/"}, {"webhook_url": "https://[::1]/"},
                {"webhook_url": "https://api.localhost/"}, {"webhook_url": "https://127.1/a"},
                {"webhook_url": "https://2130706433/a"}, {"webhook_url": "https://0x7f000001/a"},
                {"webhook_url": "https://0177.0.0.1/a"}, {"webhook_url": "https://2852039166/a"},
                {"remind_at": [1]}, {"remind_at": [1001]}, {"pause_schedule_after": True}, {"events": ["sometimes"]}):  # fmt: skip
        assert settings(acme, **bad).status_code == 422, bad
    assert rows_of("SELECT * FROM alert_settings") == []
    accented = ["joão.silva@empresa.com.br", "müller+ops@acme.example"]  # RFC 6531
    assert settings(acme, emails=accented).status_code == 200
    hook = "https://hooks.slack.example/services/T0/B0/the-token?x=1"
    assert settings(acme, webhook_url=hook).status_code == 200
    as_member = client.get("/", query_string={"tenant_id": str(acme.id)},
                           headers={"Authorization": f"Bearer {acme.member_token}"})  # fmt: skip
    assert as_member.get_json()["settings"]["webhook_url"] == "https://hooks.slack.example/…"
    assert "the-token" not in as_member.get_data(as_text=True)
    as_admin = client.get("/", query_string={"tenant_id": str(acme.id)},
                          headers={"Authorization": f"Bearer {acme.admin_token}"})  # fmt: skip
    assert as_admin.get_json()["settings"]["webhook_url"] == hook


def test_a_host_name_with_an_address_that_does_not_answer_is_delivered_at_another(
    acme: TenantFixture, hook: str, failing: ScriptedProvider, recorder: RecordingDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A name with several addresses, one of them dead: connecting by name tries each, and
    so must connecting to the addresses checked (only the first was tried, every attempt)."""
    port = int(hook.rsplit(":", 1)[1].split("/", 1)[0])
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = closed.getsockname()[1]  # a port nothing listens on once this closes
    real = socket.getaddrinfo

    def resolve(host: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.syncq.test":  # a DNS answer: a dead address first, then the hook's
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", dead)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real(host, service, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert settings(acme, webhook_url=f"http://hooks.syncq.test:{port}/hook").status_code == 200
    run_to_the_end(acme, recorder)
    [report] = deliver()
    assert report["status"] == "sent"
    [(headers, _)] = Hook.received
    assert headers["Host"] == f"hooks.syncq.test:{port}"


def test_a_mail_server_that_took_the_message_but_fumbled_quit_gets_it_once(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """DATA answered 250, QUIT 421: the message is the server's. The QUIT's error failed the
    channel, so every retry sent it again (8 e-mails) and the alert ended failed."""

    async def handle_QUIT(server: Any, session: Any, envelope: Any) -> str:
        return "421 4.3.2 Service shutting down"

    mailbox.handle_QUIT = handle_QUIT  # type: ignore[attr-defined]
    settings(acme, emails=["ops@acme.example"])
    run_to_the_end(acme, recorder)
    deliver()
    [alert] = outbox()
    assert (alert["status"], alert["delivered"]) == ("sent", ["email"])
    assert len(mailbox.messages) == 1


def test_a_first_failure_that_pauses_the_schedule_reaches_who_asked_for_schedule_paused(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """With pause_schedule_after=1 the first failure's alert is `failing` with the pause on
    it: a tenant that asked for `schedule_paused` only was never told."""
    settings(acme, emails=["ops@acme.example"], events=["schedule_paused"], pause_schedule_after=1)
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, next_run_at,"
            " due_at) VALUES (%s, 'scripted', '0 3 * * *', now() + interval '1 day',"
            " now() + interval '1 day')",
            [acme.id],
        )
    run_to_the_end(acme, recorder)
    assert rows_of("SELECT enabled FROM integration_schedules")[0]["enabled"] is False
    deliver()
    [alert] = outbox()
    assert (alert["event"], alert["schedule_paused"], alert["status"]) == ("failing", True, "sent")
    assert len(mailbox.messages) == 1 and "pausado" in read(mailbox.messages[0])


@pytest.mark.parametrize(
    "change", ["nothing", "tenant_removes_its_emails", "email_transport_disabled"]
)
def test_an_alert_delivered_on_its_last_attempt_is_not_failed_by_the_rescue(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, configure: Configure,
    *, monkeypatch: pytest.MonkeyPatch, change: str,
) -> None:  # fmt: skip
    """The sender's connection drops while it writes the end of an alert it has delivered
    (the e-mail went out and was recorded under the lease), on its last attempt: the rescue
    recorded it `failed` (and the metrics counted a failed delivery). Nor may it when, before
    the rescue, the tenant takes its address off the alerts or the e-mail transport is
    turned off: read from the settings of now, no channel was left, and that read as failed."""
    configure(ALERT_MAX_ATTEMPTS="1")
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    settings(acme, emails=["ops@acme.example"])
    run_to_the_end(acme, recorder)
    end = alerts._end
    dropped = [True]

    def end_once_dropped(*args: Any, **kwargs: Any) -> Any:
        if dropped.pop() if dropped else False:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return end(*args, **kwargs)

    monkeypatch.setattr(alerts, "_end", end_once_dropped)
    with pytest.raises(psycopg.OperationalError):
        deliver()
    assert len(mailbox.messages) == 1
    [alert] = outbox()
    assert (alert["status"], alert["delivered"], alert["attempts"]) == ("running", ["email"], 1)
    if change == "tenant_removes_its_emails":
        answer = settings(acme, emails=[])
        assert answer.status_code == 200, answer.get_json()
    elif change == "email_transport_disabled":
        configure(ALERT_EMAIL_TRANSPORT="disabled")
    with psycopg.connect(DB_URL[0]) as conn:  # its lease goes stale
        conn.execute("UPDATE alert_outbox SET heartbeat_at = now() - interval '1 hour'")
    assert rescue(alerts.KIND) == 1
    deliver()
    [alert] = outbox()
    assert (alert["status"], alert["delivered"]) == ("sent", ["email"]), alert["error_message"]
    assert len(mailbox.messages) == 1


def test_an_alert_delivered_before_its_channels_were_dropped_is_sent_not_suppressed(
    acme: TenantFixture, mailbox: Mailbox, hook: str, failing: ScriptedProvider,
    recorder: RecordingDispatcher,
) -> None:  # fmt: skip
    """The e-mail went out, the webhook answered 503 and waits for its retry; meanwhile the
    tenant takes both channels off. The retry found no channel and recorded the alert
    `suppressed` (an alert "the tenant did not ask for, or no channel at all"), though it
    was mailed: as the rescue says since 1d8de82, a delivered alert with nothing left to
    send is `sent`."""
    Hook.answer = 503
    settings(acme, emails=["ops@acme.example"], webhook_url=hook)
    run_to_the_end(acme, recorder)
    [first] = deliver()
    assert first["status"] == "pending" and outbox()[0]["delivered"] == ["email"]
    answer = settings(acme, emails=[], webhook_url=None)
    assert answer.status_code == 200, answer.get_json()
    with psycopg.connect(DB_URL[0]) as conn:  # the backoff has passed
        conn.execute("UPDATE alert_outbox SET run_after = now()")
    [second] = deliver()
    [alert] = outbox()
    assert (second["status"], alert["status"], alert["delivered"]) == ("sent", "sent", ["email"])
    assert len(mailbox.messages) == 1 and len(Hook.received) == 1


class _Holding(Mailbox):
    """Takes a message, then waits for the test (holding the alert's row) to say go on."""

    def __init__(self) -> None:
        super().__init__()
        self.took, self.go = threading.Event(), threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.took.set()
        self.go.wait(10)
        return answer


def test_an_email_whose_delivery_record_loses_its_connection_is_not_sent_again(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, configure: Configure
) -> None:
    """The e-mail went out; the backend recording it under the lease is terminated. The
    sender raised, the alert sat 'running' with nothing delivered, and the rescue mailed it
    again: the record of a delivery is retried on a fresh connection, as a job's end is."""
    box = _Holding()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    configure(SMTP_PORT=str(controller.port))
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    try:
        settings(acme, emails=["ops@acme.example"])
        run_to_the_end(acme, recorder)
        sender = threading.Thread(target=deliver)
        with psycopg.connect(DB_URL[0]) as locker:
            sender.start()
            assert box.took.wait(10)
            locker.execute("SELECT 1 FROM alert_outbox FOR UPDATE")
            box.go.set()  # the send ends; recording it waits for the lock
            terminate_lock_waiters(DB_URL[0])
            locker.rollback()
        sender.join(30)
        with psycopg.connect(DB_URL[0]) as conn:  # had it been left running: its lease stale
            conn.execute("UPDATE alert_outbox SET heartbeat_at = now() - interval '1 hour'")
        rescue(alerts.KIND)
        deliver()
    finally:
        box.go.set()
        controller.stop()
    [alert] = outbox()
    assert (alert["status"], alert["delivered"]) == ("sent", ["email"])
    assert len(box.messages) == 1


def greylist(mailbox: Mailbox, greylisted: str, *, until_a_message: bool) -> str:
    """The mailbox puts `greylisted` off (450) and takes the others: always, or until it
    holds a message. The address, for the test's settings."""

    async def handle_rcpt(
        server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == greylisted and not (until_a_message and mailbox.messages):
            return "450 4.2.1 Try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    mailbox.handle_RCPT = handle_rcpt  # type: ignore[method-assign]
    return greylisted


def test_a_recipient_refused_for_now_still_gets_the_alert_later(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A mail server that greylists one recipient (450) and takes the other: the alert
    ended `sent` and that recipient never heard of it. It is retried for them alone."""
    greylisted = greylist(mailbox, "cto@acme.example", until_a_message=True)
    assert settings(acme, emails=["ops@acme.example", greylisted]).status_code == 200
    run_to_the_end(acme, recorder)
    # No backoff here (the mailbox fixture's): the drain retries at once.
    assert [r["status"] for r in deliver()] == ["pending", "sent"]
    assert [m.rcpt_tos for m in mailbox.messages] == [["ops@acme.example"], [greylisted]]
    [alert] = outbox()
    assert (alert["status"], alert["delivered"]) == ("sent", ["email"])
    assert alert["mailed"] == ["ops@acme.example"]  # the one who took it on the first try


def test_a_relay_without_smtputf8_mails_the_addresses_it_can_take(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, configure: Configure
) -> None:
    """A relay without SMTPUTF8 (Amazon SES's SMTP endpoint is one) cannot take a name
    before the @ that is not ASCII, and smtplib refused the whole message for it: one
    `joão@` cost every other recipient every alert, as over SES. The others get it; the
    alert fails on that address, told by its count alone."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    configure(SMTP_PORT=str(controller.port))
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    try:
        settings(acme, emails=["ops@acme.example", "joão@acme.example"])
        run_to_the_end(acme, recorder)
        [report] = deliver()
    finally:
        controller.stop()
    assert [m.rcpt_tos for m in box.messages] == [["ops@acme.example"]]
    headers = email.message_from_bytes(box.messages[0].content, policy=email.policy.default)
    assert str(headers["To"]) == "ops@acme.example"
    [alert] = outbox()
    assert (report["status"], alert["status"]) == ("failed", "failed")
    assert alert["mailed"] == ["ops@acme.example"]
    assert "1 of 2" in alert["error_message"] and "jo" not in alert["error_message"]


def test_an_alert_mailed_to_some_before_the_channels_were_dropped_is_sent_not_suppressed(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """One recipient took the e-mail, the other was greylisted (450) and waits for the
    retry; meanwhile the tenant takes every recipient off. The retry found no channel and
    recorded the alert `suppressed` ("no recipient"), though it was mailed: as for a channel
    delivered whole, an alert someone got with nothing left to send is `sent`."""
    greylisted = greylist(mailbox, "cto@acme.example", until_a_message=False)
    assert settings(acme, emails=["ops@acme.example", greylisted]).status_code == 200
    run_to_the_end(acme, recorder)
    first = alerts.deliver(_claim())
    assert first["status"] == "pending" and outbox()[0]["mailed"] == ["ops@acme.example"]
    assert settings(acme, emails=[]).status_code == 200
    second = alerts.deliver(_claim())
    [alert] = outbox()
    assert (second["status"], alert["status"]) == ("sent", "sent")
    assert [m.rcpt_tos for m in mailbox.messages] == [["ops@acme.example"]]
    shown = function_client("integration-alerts").get(
        "/", query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.admin_token}"},
    )  # fmt: skip
    assert [a["status"] for a in shown.get_json()["recent"]] == ["sent"]


def _claim() -> dict[str, Any]:
    with db.transaction() as conn:
        [claimed] = engine.claim(conn, alerts.TABLE)
    return claimed


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ("554 5.7.1 Message rejected", False),
        ("500 5.5.2 Syntax error", False),
        ("451 4.3.0 Try again later", True),
    ],
)
def test_a_message_the_mail_server_refuses_at_data_is_retried_only_for_a_4xx(
    mailbox: Mailbox, answer: str, retryable: bool
) -> None:
    """Every recipient taken, then the message refused at DATA: a 5xx will not change, so
    the alert ends failed; a 4xx is tried again later."""

    async def refuse(server: Any, session: Any, envelope: Any) -> str:
        return answer

    mailbox.handle_DATA = refuse  # type: ignore[method-assign]
    alert = Composed(subject="Falha", text="texto", payload={})
    with pytest.raises(UpstreamError) as refused:
        channels.send_email(get_settings(), "a1", ["ops@acme.example"], alert)
    assert refused.value.retryable is retryable and answer[:3] in refused.value.message


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("Throttling", True), ("ServiceUnavailable", True), ("MessageRejected", False)],
)
def test_ses_throttling_is_retried_and_a_rejection_is_not(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, code: str, retryable: bool
) -> None:
    """SES slowing a burst of alerts down (Throttling) is tried again later, not the end of
    the alert; a message SES rejects will not pass later."""
    from botocore.exceptions import ClientError

    class Refusing:
        def send_raw_email(self, **kwargs: Any) -> None:
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "SendRawEmail")

    configure(ALERT_EMAIL_TRANSPORT="ses", ALERT_EMAIL_FROM="alertas@syncq.example")
    monkeypatch.setattr(channels, "_ses_client", lambda region: Refusing())
    alert = Composed(subject="Falha", text="texto", payload={})
    with pytest.raises(UpstreamError) as refused:
        channels.send_email(get_settings(), "a1", ["ops@acme.example"], alert)
    assert refused.value.retryable is retryable and code in refused.value.message


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (409, True),
        (425, True),
        (400, False),
        (404, False),
        (410, False),
        (302, False),
        (304, False),
    ],
)
def test_a_webhook_answer_is_retried_only_when_a_later_try_may_pass(
    hook: str, status: int, retryable: bool
) -> None:
    """A timeout, a conflict or "too early" may pass later; a hook gone (404, 410) or a
    request it refuses will not, so the alert ends failed instead of retrying for hours.
    A redirect is not a delivery (the alert never reached the hook)."""
    Hook.answer = status
    alert = Composed(subject="Falha", text="texto", payload={"text": "texto"})
    with pytest.raises(UpstreamError) as failed:
        channels.send_webhook(get_settings(), "t1", hook, "a1", alert)
    assert failed.value.retryable is retryable and str(status) in failed.value.message
    assert len(Hook.received) == 1


@pytest.mark.parametrize("private", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "fd00::1"])
def test_a_host_name_with_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, private: str
) -> None:
    """A name answering one public address and one private one must not be called: the
    connection may go to either (it moves on when one does not answer). Public addresses
    alone are each a target, IPv4 first, under the name they were for."""
    public = ["2606:2800:220:1::1", "93.184.216.34"]

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        assert host == "hooks.syncq.test"
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answer
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    answer = [*public, private]
    with pytest.raises(UpstreamError) as refused:
        channels.pin("https://hooks.syncq.test/a", local=False)
    assert refused.value.retryable is False and "private network" in refused.value.message
    answer = public
    targets = channels.pin("https://hooks.syncq.test/a", local=False)
    assert [t.url for t in targets] == [
        "https://93.184.216.34/a",
        "https://[2606:2800:220:1::1]/a",
    ]
    assert {(t.host, t.tls_name) for t in targets} == {("hooks.syncq.test", "hooks.syncq.test")}


def test_a_plain_http_webhook_is_refused_outside_a_local_stack(
    acme: TenantFixture, configure: Configure
) -> None:
    """The alert (and its signature) would cross the network in the clear: an http:// URL
    is refused when saved, and when sent, unless ALERT_WEBHOOK_ALLOW_HTTP (local stacks)."""
    configure(ALERT_WEBHOOK_SECRET=WEBHOOK_SECRET, ALERT_WEBHOOK_ALLOW_HTTP="false")
    answer = settings(acme, webhook_url="http://hooks.slack.example/services/x")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"][0]["message"] == "webhooks must use https://"
    assert settings(acme, webhook_url="https://hooks.slack.example/services/x").status_code == 200
    alert = Composed(subject="Falha", text="texto", payload={"text": "texto"})
    with pytest.raises(UpstreamError) as refused:
        channels.send_webhook(get_settings(), str(acme.id), "http://127.0.0.1:9/a", "a1", alert)
    assert refused.value.retryable is False and "https://" in refused.value.message


def test_a_recipient_refused_for_now_beside_one_refused_for_good_is_retried() -> None:
    """One address greylisted (4xx) and another gone (5xx): the alert is tried again, so
    the greylisted one still gets it (the retry mails only who has not had it)."""
    mixed = channels.refused_error({"ops@acme.example": 450, "gone@acme.example": 550}, 3)
    assert mixed.retryable is True and "2 of 3" in mixed.message and "@" not in mixed.message
    assert "mail server" not in mixed.message  # SES refuses as well as an SMTP server
    for_good = channels.refused_error({"gone@acme.example": 550, "jo@acme.example": 553}, 3)
    assert for_good.retryable is False


def _schedule(tenant: TenantFixture, *, enabled: bool = True) -> None:
    with psycopg.connect(DB_URL[0]) as conn:
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, next_run_at,"
            " due_at, enabled, paused_reason) VALUES (%s, 'scripted',"
            " '0 3 * * *', now() + interval '1 day', now() + interval '1 day', %s, %s)",
            [tenant.id, enabled, None if enabled else "paused by an admin"],
        )


def test_a_failure_that_pauses_the_schedule_alerts_even_within_a_day_of_the_last_alert(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A first failure inside the flapping window raises nothing, unless it pauses the
    schedule: the tenant must hear that its schedule stopped."""
    settings(acme, emails=["ops@acme.example"], pause_schedule_after=1)
    _schedule(acme)
    with psycopg.connect(DB_URL[0]) as conn:  # the last streak was told an hour ago
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '1 hour'")
    assert run_to_the_end(acme, recorder) == "error"
    assert rows_of("SELECT enabled FROM integration_schedules")[0]["enabled"] is False
    assert [(a["event"], a["schedule_paused"]) for a in outbox()] == [("failing", True)]


def test_a_quiet_streak_that_pauses_the_schedule_is_told_as_failing(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A streak that began within a day of the last alert raised nothing; when its failures
    pause the schedule before a reminder told it, that alert is its first: `failing` with the
    pause on it, as a first failure that pauses is. As `schedule_paused` it was suppressed
    for a tenant that asked for `failing` and `recovered` only, who then got `recovered`."""
    settings(acme, emails=["ops@acme.example"], events=["failing", "recovered"],
             pause_schedule_after=2)  # fmt: skip
    _schedule(acme)
    with psycopg.connect(DB_URL[0]) as conn:  # the last streak was told an hour ago
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '1 hour'")
    assert run_to_the_end(acme, recorder) == "error"
    assert outbox() == []  # within the flapping window: quiet
    assert run_to_the_end(acme, recorder) == "error"
    assert rows_of("SELECT enabled FROM integration_schedules")[0]["enabled"] is False
    events = [(a["event"], a["failures"], a["schedule_paused"]) for a in outbox()]
    assert events == [("failing", 2, True)]
    deliver()
    assert [a["status"] for a in outbox()] == ["sent"]
    assert len(mailbox.messages) == 1 and "pausado" in read(mailbox.messages[0])


def test_a_schedule_already_disabled_is_not_paused_again_by_failures(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A schedule an admin disabled keeps its reason, and the alert does not say the
    failures paused it."""
    settings(acme, emails=["ops@acme.example"], pause_schedule_after=1)
    _schedule(acme, enabled=False)
    assert run_to_the_end(acme, recorder) == "error"
    [schedule] = rows_of("SELECT enabled, paused_reason FROM integration_schedules")
    assert (schedule["enabled"], schedule["paused_reason"]) == (False, "paused by an admin")
    assert [(a["event"], a["schedule_paused"]) for a in outbox()] == [("failing", False)]


def test_recent_alerts_are_listed_newest_first(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    settings(acme, emails=["ops@acme.example"])
    assert run_to_the_end(acme, recorder) == "error"
    failing.failures = 0
    assert run_to_the_end(acme, recorder) == "success"
    shown = function_client("integration-alerts").get(
        "/", query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.member_token}"},
    )  # fmt: skip
    assert [a["event"] for a in shown.get_json()["recent"]] == ["recovered", "failing"]


def test_settings_saved_again_replace_every_field(acme: TenantFixture) -> None:
    first = {"emails": ["ops@acme.example"], "remind_at": [3, 10], "pause_schedule_after": 5}
    assert settings(acme, **first).status_code == 200
    second = {"emails": ["cto@acme.example"], "remind_at": [4], "pause_schedule_after": 7,
              "events": ["failing"]}  # fmt: skip
    assert settings(acme, **second).status_code == 200
    shown = function_client("integration-alerts").get(
        "/", query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.admin_token}"},
    )  # fmt: skip
    assert shown.get_json()["settings"] == {**second, "webhook_url": None}


def test_a_channel_recorded_twice_is_delivered_once(
    acme: TenantFixture, mailbox: Mailbox, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """Recording a delivery is retried on a fresh connection: recording it twice changes
    nothing (`delivered` names each channel once)."""
    settings(acme, emails=["ops@acme.example"])
    run_to_the_end(acme, recorder)
    lease = Lease(alerts.TABLE, _claim())
    alerts._record_delivery(lease, "email")
    alerts._record_delivery(lease, "email")
    assert outbox()[0]["delivered"] == ["email"]


def test_moving_the_last_alert_alone_does_not_tell_a_quiet_streak(
    acme: TenantFixture, failing: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """Only a new failure that raised an alert marks the streak told: a write that moves
    last_alert_at alone (an operator's, an older release's) leaves it untold, so when it
    persists it is still told as `failing`."""
    settings(acme, emails=["ops@acme.example"])
    with psycopg.connect(DB_URL[0]) as conn:  # two quiet failures in a row
        conn.execute("UPDATE tenant_integrations SET consecutive_failures = 2")
        conn.execute("UPDATE tenant_integrations SET last_alert_at = now() - interval '1 hour'")
    [integration] = rows_of("SELECT failure_alerted FROM tenant_integrations")
    assert integration["failure_alerted"] is False
    assert run_to_the_end(acme, recorder) == "error"
    assert [(a["event"], a["failures"]) for a in outbox()] == [("failing", 3)]
