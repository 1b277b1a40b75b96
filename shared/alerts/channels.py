"""Where alerts go: e-mail (SMTP or Amazon SES) and a webhook signed with HMAC-SHA256.

Each channel carries the alert's id as its idempotency key (the e-mail's Message-ID, the
webhook's `Idempotency-Key`), and the outbox records every channel that succeeded, so a
retry after a failure never sends twice on a channel that worked.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import smtplib
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
import orjson

from shared.alerts.message import Composed
from shared.errors import UpstreamError, UpstreamUnavailable
from shared.http import HttpClient, RetryPolicy
from shared.settings import Settings

SIGNATURE_HEADER = "X-Syncq-Signature"


def send_email(
    settings: Settings, alert_id: str, recipients: list[str], alert: Composed
) -> dict[str, int]:
    """One e-mail to the recipients, through the configured transport; the recipients the
    server refused while it took the others (address -> SMTP code; none: all took it)."""
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = settings.alerts.alert_email_from
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = f"<{alert_id}@syncq>"
    # RFC 5322 requires the origination date; neither smtplib nor SES adds it. The alert's
    # own time, so a retried delivery is the same message.
    message["Date"] = format_datetime((alert.created_at or datetime.now(UTC)).astimezone(UTC))
    message.set_content(alert.text)
    if settings.alerts.alert_email_transport == "ses":
        return _send_ses(settings, message, recipients)
    if settings.alerts.alert_email_transport == "smtp":
        return _send_smtp(settings, message, recipients)
    raise UpstreamError("E-mail is not configured (ALERT_EMAIL_TRANSPORT).", retryable=False)


def refused_error(refused: dict[str, int], recipients: int) -> UpstreamError:
    """Some recipients refused the e-mail the others took (their addresses untold)."""
    codes = sorted(set(refused.values()))
    return UpstreamError(
        f"The e-mail was refused for {len(refused)} of {recipients} recipients "
        f"({', '.join(map(str, codes))}).",  # by an SMTP server or by SES: said for both
        retryable=any(400 <= code < 500 for code in codes),  # 4xx: try again later
    )


def _send_smtp(settings: Settings, message: EmailMessage, recipients: list[str]) -> dict[str, int]:
    smtp = smtplib.SMTP(timeout=settings.alerts.smtp_timeout_s)
    try:
        smtp.connect(settings.alerts.smtp_host, settings.alerts.smtp_port)
        if settings.alerts.smtp_starttls:
            smtp.starttls()
        if settings.alerts.smtp_username and settings.alerts.smtp_password:
            smtp.login(
                settings.alerts.smtp_username, settings.alerts.smtp_password.get_secret_value()
            )
        smtp.ehlo_or_helo_if_needed()
        taken, unfit = (
            (recipients, {}) if smtp.has_extn("smtputf8") else _ascii_names(message, recipients)
        )
        if not taken:
            return unfit
        refused = smtp.send_message(message, to_addrs=taken)  # not re-read from the header
    except smtplib.SMTPResponseException as exc:
        retryable = exc.smtp_code >= 400 and exc.smtp_code < 500
        raise UpstreamError(
            f"The mail server answered {exc.smtp_code}.", retryable=retryable
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:  # every one of them (their addresses untold)
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise UpstreamError(
            f"The mail server refused every recipient ({', '.join(map(str, codes))}).",
            retryable=any(400 <= code < 500 for code in codes),  # 4xx: try again later
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise UpstreamError(f"The mail server failed ({type(exc).__name__}).") from exc
    finally:
        _goodbye(smtp)
    return {**unfit, **{address: code for address, (code, _) in refused.items()}}


def _goodbye(smtp: smtplib.SMTP) -> None:
    """QUIT, whatever it answers: once DATA was answered 250 the message is the server's,
    and a QUIT answered 421 (or a connection dropped then) must not send it again."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@cache
def _ses_client(region: str) -> Any:
    import boto3  # noqa: PLC0415 - heavy, and only a deployment that uses SES loads it

    return boto3.client("ses", region_name=region)


# SES has no SMTPUTF8, nor have some relays: an address's name (before the @) must be ASCII
# (domains are, by models._EMAIL), and one address it cannot take refuses the whole message.
_NOT_ASCII_NAME = 553  # the SMTP reply for a mailbox name not allowed


def _ascii_names(message: EmailMessage, recipients: list[str]) -> tuple[list[str], dict[str, int]]:
    """The recipients a server without SMTPUTF8 takes (the message's To now names them
    alone), and the others as refused."""
    taken = [r for r in recipients if r.isascii()]
    refused = {r: _NOT_ASCII_NAME for r in recipients if not r.isascii()}
    if refused and taken:
        del message["To"]
        message["To"] = ", ".join(taken)
    return taken, refused


def _send_ses(settings: Settings, message: EmailMessage, recipients: list[str]) -> dict[str, int]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - see above

    taken, refused = _ascii_names(message, recipients)
    if not taken:
        return refused
    try:
        _ses_client(settings.alerts.ses_region).send_raw_email(
            Source=settings.alerts.alert_email_from,
            Destinations=taken,
            RawMessage={"Data": message.as_bytes()},
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "error"))
        retryable = code in ("Throttling", "ServiceUnavailable", "InternalFailure")
        raise UpstreamError(
            f"Amazon SES refused the e-mail ({code}).", retryable=retryable
        ) from exc
    except BotoCoreError as exc:
        raise UpstreamError(f"Amazon SES failed ({type(exc).__name__}).") from exc
    return refused


def signing_key(settings: Settings, tenant_id: str) -> str:
    """The tenant's webhook signing key, derived from the server's secret."""
    if settings.alerts.alert_webhook_secret is None:
        raise UpstreamError("Webhooks are not configured (ALERT_WEBHOOK_SECRET).", retryable=False)
    secret = settings.alerts.alert_webhook_secret.get_secret_value().encode()
    return hmac.new(secret, f"alerts:{tenant_id}".encode(), hashlib.sha256).hexdigest()


def sign(key: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: what a receiver recomputes."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_url_problem(url: str, *, allow_http: bool) -> str | None:
    """Why a webhook URL is refused (None: it is fine). `allow_http` (local stacks) also
    lets it reach this machine and private networks."""
    try:
        parts = urlsplit(url)
        host = parts.hostname  # checks a bracketed host: `https://[zz]/` is refused
    except ValueError:  # `https://[::1`: not a URL at all
        return "expected an absolute https:// URL"
    if parts.scheme not in ("https", "http") or not host:
        return "expected an absolute https:// URL"
    if parts.scheme == "http" and not allow_http:
        return "webhooks must use https://"
    if parts.username or parts.password:
        return "credentials do not belong in the URL"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "a URL holds no spaces or control characters"
    return _address_problem(parts, host, local=allow_http)


_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?")


_NUMERIC_LABELS = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?", re.I)


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a literal host names, in any form the resolver reads as one (`127.1`,
    `2130706433`, `0x7f000001`, `0177.0.0.1` all reach 127.0.0.1); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_LABELS.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:  # numbers no resolver reads as an address: not a host either
        return ipaddress.IPv4Address(0)


def _address_problem(parts: SplitResult, host: str, *, local: bool) -> str | None:
    """Why the URL's host and port cannot (or must not) be reached: a port out of range, a
    name DNS cannot hold, or (unless `local`) this machine or a private network, which a
    tenant must not make syncq call. A name that resolves to a private address is caught
    when the alert is sent (`pin`)."""
    try:
        port = parts.port  # ValueError outside 0-65535
    except ValueError:
        port = 0
    if port == 0:
        return "the port must be 1-65535"
    address = _ip_of(host)
    if address is None:
        try:
            name = host.encode("idna").decode("ascii").lower()  # as DNS sends it
        except UnicodeError:
            name = ""
        if not _HOST_NAME.fullmatch(name):
            return "not a host name"
        internal = f".{name.rstrip('.')}".endswith(".localhost")
    else:
        internal = not address.is_global
    return "the host is this machine or a private network" if internal and not local else None


@dataclass(frozen=True)
class Pinned:
    """A webhook URL whose host name was resolved and checked: `url` names the address the
    check passed, `host` is the Host header and `tls_name` the name the certificate must
    carry (sent as SNI), so the connection goes where the check looked."""

    url: str
    host: str
    tls_name: str


def pin(url: str, *, local: bool) -> list[Pinned]:
    """Resolve the host of a `webhook_url_problem`-clean URL once, now: one target per
    address it resolves to, IPv4 first (tried in turn, as a connection by name would be).

    An address literal is kept. A name is refused (not retried) when any address it
    resolves to is this machine or a private network, unless `local`; a name that does not
    resolve is retried later (DNS may be down). Connecting to the checked addresses leaves
    no second lookup for a DNS rebinding to answer differently.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _ip_of(host) is not None:
        return [Pinned(url, parts.netloc, host)]
    name = host.encode("idna").decode("ascii").rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UpstreamError("The webhook's host name could not be resolved.") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    if not addresses:
        raise UpstreamError("The webhook's host name could not be resolved.")
    if not local and any(not address.is_global for address in addresses):
        reason = "the host name resolves to this machine or a private network"
        raise UpstreamError(f"The webhook URL is refused: {reason}.", retryable=False)
    suffix = f":{parts.port}" if parts.port else ""
    targets = []
    for address in sorted(dict.fromkeys(addresses), key=lambda a: a.version):
        literal = f"[{address}]" if address.version == 6 else str(address)
        pinned = parts._replace(netloc=f"{literal}{suffix}")
        targets.append(Pinned(urlunsplit(pinned), f"{name}{suffix}", name))
    return targets


def send_webhook(
    settings: Settings, tenant_id: str, url: str, alert_id: str, alert: Composed
) -> None:
    """POST the alert's JSON, signed; a 2xx is delivered, anything else an UpstreamError."""
    local = settings.alerts.alert_webhook_allow_http
    problem = webhook_url_problem(url, allow_http=local)
    if problem is not None:
        raise UpstreamError(f"The webhook URL is refused: {problem}.", retryable=False)
    body = orjson.dumps(alert.payload)
    signature = sign(signing_key(settings, tenant_id), int(time.time()), body)
    targets = pin(url, local=local)
    for target in targets:
        try:
            answer = _post(settings, target, body, alert_id, signature)
            break
        except UpstreamUnavailable as exc:
            if not exc.repeatable or exc.upstream_status is not None or target is targets[-1]:
                raise  # it may have arrived, or there is no other address to try
    if not 200 <= answer.status_code < 300:
        retryable = answer.status_code in (408, 409, 425) or answer.status_code >= 500
        raise UpstreamError(f"The webhook answered HTTP {answer.status_code}.", retryable=retryable)


def _post(
    settings: Settings, target: Pinned, body: bytes, alert_id: str, signature: str
) -> httpx.Response:
    headers = {
        "Host": target.host,
        "Content-Type": "application/json",
        "Idempotency-Key": alert_id,
        SIGNATURE_HEADER: signature,
    }
    client = _client(settings)
    try:
        return client.request(
            "POST",
            target.url,
            content=body,
            headers=headers,
            idempotent=True,
            extensions={"sni_hostname": target.tls_name},
        )
    finally:
        client.close()


def _client(settings: Settings) -> HttpClient:
    """A client of its own for one delivery: connections are pooled by address, and a
    connection whose certificate was checked for one name must not carry another's."""
    # One try per delivery attempt: the engine schedules the retries (with backoff).
    policy = RetryPolicy(
        attempts=1, base_s=1.0, cap_s=1.0, timeout_s=settings.alerts.alert_webhook_timeout_s
    )
    return HttpClient("", policy, name="the alert webhook", transport=httpx.HTTPTransport())
