"""What an alert says, in Portuguese as the old UI did: a subject, a text (the e-mail body
and the webhook's Slack-compatible `text`) and the JSON a webhook receives. Never a secret
or lead data: the detail is scrubbed again here, whatever wrote it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.scrub import scrub_text

NAMES = {
    "acessorias": "Acessórias",
    "onecode": "OneCode",
    "bomcontrole": "BomControle",
    "gestao_scouter": "Gestão Scouter",
}
DETAIL_CHARS = 500


@dataclass(frozen=True)
class Composed:
    """An alert as its channels send it: a subject and text for e-mail, a payload for
    webhooks."""

    subject: str
    text: str
    payload: dict[str, Any]
    created_at: datetime | None = None  # when the alert was raised: the e-mail's Date


def _slack(text: str) -> str:
    """Slack's control characters escaped: a provider's words (`<!channel>`, `<url|label>`)
    must not ping a channel or show a disguised link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def compose(row: dict[str, Any], tenant_name: str) -> Composed:
    """The alert for an outbox row of `tenant_name`."""
    provider = NAMES.get(row["provider_slug"], row["provider_slug"])
    failures = row["failures"]
    detail = scrub_text(row["detail"] or "")[:DETAIL_CHARS]
    subject, lead = _headline(row["event"], provider, failures)
    lines = [f"{lead} (empresa: {tenant_name})."]
    if detail:
        lines.append(f"Último erro: {detail}")
    if row["schedule_paused"] or row["event"] == "schedule_paused":
        lines.append(
            f"O agendamento de {provider} foi pausado após {failures} falhas seguidas. "
            "Corrija a integração e reative o agendamento."
        )
    if row["job_id"]:
        lines.append(f"Execução: {row['job_id']}")
    text = "\n".join(lines)
    payload = {
        "text": f"*{_slack(subject)}*\n{_slack(text)}",
        "alert": {
            "id": str(row["id"]),
            "event": row["event"],
            "tenant": tenant_name,
            "provider": row["provider_slug"],
            "job_id": str(row["job_id"]) if row["job_id"] else None,
            "failures": failures,
            "schedule_paused": bool(row["schedule_paused"]),
            "detail": detail or None,
            "pause_code": row.get("pause_code"),  # export_paused: why, as a stable code
            "created_at": row["created_at"].isoformat(),
        },
    }
    return Composed(f"[syncq] {subject}", text, payload, row["created_at"])


def _headline(event: str, provider: str, failures: int) -> tuple[str, str]:
    """(subject, first sentence) per event."""
    return {
        "failing": (
            f"Falha na integração {provider}",
            f"A sincronização {provider} falhou em todas as tentativas",
        ),
        "reminder": (
            f"{provider} continua falhando ({failures} falhas seguidas)",
            f"A sincronização {provider} falhou {failures} vezes seguidas",
        ),
        "digest": (
            f"Resumo diário: {provider} ainda falhando",
            f"A sincronização {provider} segue falhando: {failures} falhas seguidas",
        ),
        "schedule_paused": (
            f"Agendamento de {provider} pausado",
            f"A sincronização {provider} falhou {failures} vezes seguidas",
        ),
        "recovered": (
            f"{provider} voltou a funcionar",
            f"A sincronização {provider} concluiu com sucesso após {failures} falhas",
        ),
        "export_paused": (
            "Exportação para Gestão Scouter pausada",
            "A exportação de leads para o Gestão Scouter parou e aguarda uma ação",
        ),
        "export_failed": (
            "Exportação para Gestão Scouter falhou",
            "A exportação de leads para o Gestão Scouter falhou",
        ),
    }[event]
