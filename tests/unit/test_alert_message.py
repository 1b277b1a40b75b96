"""What an alert says (pure: no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.alerts.message import compose


def _row(detail: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "provider_slug": "bomcontrole", "failures": 1, "event": "failing",
        "detail": detail, "schedule_paused": False, "job_id": None,
        "created_at": datetime.now(UTC),
    }  # fmt: skip


def test_a_providers_words_cannot_ping_or_link_in_the_slack_text() -> None:
    said = "HTTP 400: <!channel> <https://evil.example/login|Reconecte aqui> & mais"
    alert = compose(_row(said), "Acme <Ltda>")
    text = alert.payload["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example/login|Reconecte aqui&gt; &amp; mais" in text
    assert "Acme &lt;Ltda&gt;" in text
    assert said in alert.text and alert.payload["alert"]["detail"] == said  # plain elsewhere


def test_the_detail_is_scrubbed_again_whatever_wrote_it() -> None:
    """Defence in depth: a detail written unscrubbed (a bearer token, a lead's e-mail and
    phone) leaves none of them in the e-mail, the Slack text or the webhook's JSON."""
    said = "HTTP 401 Bearer abcdef0123456789 for lead ana@acme.example +55 11 98765-4321"
    alert = compose(_row(said), "Acme")
    for told in (
        alert.subject,
        alert.text,
        alert.payload["text"],
        alert.payload["alert"]["detail"],
    ):
        assert "abcdef0123456789" not in told and "ana@acme.example" not in told
        assert "98765-4321" not in told
    assert "HTTP 401" in alert.payload["alert"]["detail"]


def test_a_long_detail_is_cut_to_its_first_500_characters() -> None:
    """A provider's whole error page must not become the e-mail: the detail is bounded in
    the text, the Slack text and the JSON alike."""
    said = "falha no servidor " * 200
    alert = compose(_row(said), "Acme")
    detail = alert.payload["alert"]["detail"]
    assert detail == said[:500]
    assert f"Último erro: {detail}\n" in alert.text + "\n" and said[:501] not in alert.text
    assert said[:501] not in alert.payload["text"]


def test_an_export_pause_tells_a_webhook_its_code() -> None:
    """A webhook's receiver tells the kinds of pause apart by their code, not the wording."""
    row = {**_row("3 batches in a row failed; last: HTTP 503"), "event": "export_paused"}
    paused = compose({**row, "provider_slug": "gestao_scouter", "pause_code": "failing"}, "A")
    assert paused.payload["alert"]["pause_code"] == "failing"
    assert compose(_row("HTTP 500"), "Acme").payload["alert"]["pause_code"] is None
