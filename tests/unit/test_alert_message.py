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
