"""The request table: for every endpoint, how to call it.

- `calls`: well-formed calls of tenant A's data that the rightful caller may make, each of
  which would change something (or read A's data) if it got through;
- `foreign`: tenant A's principal with tenant B's ids (what each answers: `Call.expect`);
- `pii`: calls carrying personal data and secrets in fields the endpoint really reads.

An endpoint missing here fails every matrix ("add a request for it"); it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.gestao.mapping import DEFAULT_MAPPING
from tests.security.credentials import SERVICE, USER, WEBHOOK, Call
from tests.security.world import IMAGE, WORKFLOW, Side, World, rh_signature

SERVICE_ONLY = frozenset({SERVICE})
USER_ONLY = frozenset({USER})
BY_WEBHOOK = frozenset({WEBHOOK})
REFUSED_OR_HIDDEN = frozenset({401, 403, 404})  # what a foreign id gets by default
SEEN = frozenset({200})  # allowed, but must show nothing of B's and change nothing of B's
CPF, PHONE, EMAIL = "123.456.789-09", "+55 11 98765-4321", "maria.canario@sigilo.example"
PASSWORD = "canary-password-Xy7!q"
# Endpoints that answer anyone, with the reason. None today; the OpenAPI document and its
# page (wave 2) will belong here if they become functions.
PUBLIC: dict[str, str] = {
    "integrations-dashboard": "the web app's static files (HTML, JS, CSS): no data, no "
    "action; the app calls the other functions with the user's own token",
}


@dataclass(frozen=True)
class Requests:
    calls: Callable[[World], list[Call]]
    foreign: Callable[[World], list[Call]]
    pii: Callable[[World], list[Call]] = field(default=lambda w: [])


def _queue() -> dict[str, Requests]:
    return {
        "run-integration": Requests(
            lambda w: [Call("run", body={"tenant_id": str(w.a.id), "provider_slug": "acessorias"})],
            lambda w: [
                Call(f"run {p}", body={"tenant_id": str(w.b.id), "provider_slug": p})
                for p in ("acessorias", "bomcontrole")
            ],
            lambda w: [
                Call(
                    "payload with personal data",
                    body={
                        "tenant_id": str(w.a.id),
                        "provider_slug": "bomcontrole",
                        "payload": {"cpf": CPF, "phone": PHONE, "email": EMAIL, "note": PASSWORD},
                    },
                )
            ],
        ),
        "process-integration-job": Requests(
            lambda w: [
                Call("sweep", body={}, accepts=SERVICE_ONLY),
                Call("wake-up", body={"job_id": str(w.a.onecode_job)}, accepts=SERVICE_ONLY),
            ],
            lambda w: [
                Call("wake B's job", body={"job_id": str(w.b.onecode_job)}),
                Call("sweep", body={}),
            ],
        ),
        "cancel-integration-job": Requests(
            lambda w: [Call("cancel", body={"job_id": str(w.a.onecode_job)})],
            lambda w: [
                Call(f"cancel B's {j}", body={"job_id": str(getattr(w.b, j))})
                for j in ("onecode_job", "acessorias_job", "bomcontrole_job")
            ],
        ),
        "list-integration-jobs": Requests(
            lambda w: [Call("list", "GET", query={"tenant_id": str(w.a.id)})],
            lambda w: [
                Call("list B", "GET", query={"tenant_id": str(w.b.id)}),
                Call(
                    "list B by provider",
                    "GET",
                    query={"tenant_id": str(w.b.id), "provider_slug": "onecode"},
                ),
                Call(
                    "B's job as A's cursor",
                    "GET",
                    expect=SEEN,
                    query={"tenant_id": str(w.a.id), "before": str(w.b.onecode_job)},
                ),
            ],
        ),
        "integration-job-events": Requests(
            lambda w: [
                Call("stream", "GET", query={"tenant_id": str(w.a.id), "max_seconds": "0.2"})
            ],
            lambda w: [
                Call("stream B", "GET", query={"tenant_id": str(w.b.id), "max_seconds": "0.2"}),
                Call(
                    "A's stream resumed after B's job",
                    "GET",
                    expect=SEEN,
                    query={"tenant_id": str(w.a.id), "max_seconds": "0.2"},
                    headers={"Last-Event-ID": f"{w.b.onecode_job}:2000-01-01T00:00:00+00:00"},
                ),
            ],
        ),
        "sync-acessorias": Requests(
            lambda w: [Call("sync", body={"tenant_slug": w.a.slug})],
            lambda w: [
                Call("sync B", body={"tenant_slug": w.b.slug}),
                Call("B's job", body={"tenant_slug": w.a.slug, "job_id": str(w.b.acessorias_job)}),
            ],
            lambda w: [
                Call("the service syncs B", body={"tenant_slug": w.b.slug}, accepts=SERVICE_ONLY)
            ],
        ),
        "sync-onecode-contacts": _sync_by_id("onecode"),
        "sync-bomcontrole": _sync_by_id("bomcontrole"),
    }


def _sync_by_id(provider: str) -> Requests:
    """sync-onecode-contacts and sync-bomcontrole: `{tenant_id, job_id?}`. A's OneCode job is
    pending and due, so its sync claims it; BomControle has no live job, so its sync inserts."""

    def job_of(side: Side) -> dict[str, str]:
        return {"job_id": str(side.onecode_job)} if provider == "onecode" else {}

    return Requests(
        lambda w: [Call("sync", body={"tenant_id": str(w.a.id), **job_of(w.a)})],
        lambda w: [
            Call("sync B", body={"tenant_id": str(w.b.id)}),
            Call(
                "B's job",
                body={"tenant_id": str(w.a.id), "job_id": str(getattr(w.b, f"{provider}_job"))},
            ),
        ],
        lambda w: [
            Call(
                "the service syncs B",
                accepts=SERVICE_ONLY,
                body={"tenant_id": str(w.b.id), **job_of(w.b)},
            )
        ],
    )


def _gestao() -> dict[str, Requests]:
    def export(w: World, action: str, tenant: object, **more: str) -> dict[str, str]:
        return {"tenant_id": str(tenant), "action": action, **more}

    actions = ("start", "pause", "resume", "reset", "status")
    return {
        "export-to-gestao-scouter-batch": Requests(
            lambda w: [
                Call(
                    "run",
                    accepts=SERVICE_ONLY,
                    body=export(w, "run", w.a.id, job_id=str(w.a.export_job)),
                ),
                Call("pause", body=export(w, "pause", w.a.id)),
                Call("history", "GET", query={"tenant_id": str(w.a.id)}),
            ],
            lambda w: [
                Call("history of B", "GET", query={"tenant_id": str(w.b.id)}),
                *(Call(f"{a} B", body=export(w, a, w.b.id)) for a in actions),
                *(
                    Call(f"{a} B's job", body=export(w, a, w.a.id, job_id=str(w.b.export_job)))
                    for a in actions[1:]
                ),
                Call("run B's job", body=export(w, "run", w.b.id, job_id=str(w.b.export_job))),
            ],
        ),
        "validate-gestao-scouter-schema": Requests(
            lambda w: [
                Call(
                    "save mapping",
                    body={
                        "tenant_id": str(w.a.id),
                        "field_mappings": DEFAULT_MAPPING,
                        "save": True,
                    },
                )
            ],
            lambda w: [
                Call("validate B", body={"tenant_id": str(w.b.id)}),
                Call(
                    "save B's mapping",
                    body={
                        "tenant_id": str(w.b.id),
                        "field_mappings": DEFAULT_MAPPING,
                        "save": True,
                    },
                ),
            ],
        ),
        "reload-gestao-scouter-schema-cache": Requests(
            lambda w: [Call("reload", body={"tenant_id": str(w.a.id)})],
            lambda w: [Call("reload B", body={"tenant_id": str(w.b.id)})],
        ),
        "validate-gestao-scouter-config": Requests(
            lambda w: [Call("check", body={"tenant_id": str(w.a.id)})],
            lambda w: [Call("check B", body={"tenant_id": str(w.b.id)})],
        ),
        "sync-from-gestao-scouter": Requests(
            lambda w: [_reverse(w, w.a.slug, 424242)],
            lambda w: [
                _reverse(w, w.b.slug, w.b.lead_ids[0], expect=frozenset({401})),
                _reverse(w, w.a.slug, w.b.lead_ids[0], expect=SEEN),
            ],
            lambda w: [
                _reverse(
                    w,
                    w.a.slug,
                    424243,
                    name="Maria Canario",
                    email=EMAIL,
                    telefone=PHONE,
                    celular=CPF,
                    observacoes=PASSWORD,
                ),
                _reverse(w, w.a.slug, 424244, age=f"{EMAIL} {CPF}"),
            ],  # refused: 422
        ),
    }


def _reverse(
    w: World, slug: str, lead_id: int, expect: frozenset[int] = REFUSED_OR_HIDDEN, **lead: object
) -> Call:
    """The remote trigger's webhook for tenant `slug` (authenticated by the tenant's secret)."""
    lead = {"id": lead_id, "name": "Remote Lead", "sync_source": "gestao_scouter", **lead}
    return Call(
        f"lead {lead_id} to {slug}",
        query={"tenant": slug},
        accepts=BY_WEBHOOK,
        scheme="gestao_secret",
        body={"lead": lead, "source": "gestao_scouter"},
        expect=expect,
    )


def _job(job_id: object, **more: object) -> dict[str, object]:
    return {"table": IMAGE, "jobId": str(job_id), **more}


def _task_end(
    w: World,
    job_id: object,
    task_id: str,
    *,
    reason: str | None = None,
    sig_for: object | None = None,
) -> Call:
    data = (
        {"code": 805, "msg": "failed", "data": {"failedReason": {"exception_message": reason}}}
        if reason
        else {"code": 0, "msg": "success", "data": [{"fileUrl": "https://x/o.png"}]}
    )
    query = {"table": IMAGE, "job": str(job_id)}
    if sig_for is not None:
        query["sig"] = rh_signature(sig_for)  # type: ignore[arg-type]
    return Call(
        f"TASK_END {task_id}",
        query=query,
        accepts=BY_WEBHOOK,
        scheme="rh_sig",
        body={"event": "TASK_END", "taskId": task_id, "eventData": json.dumps(data)},
    )


def _credits() -> dict[str, Requests]:
    rh = "runninghub-queue-manager"
    return {
        f"{rh}/check": Requests(
            lambda w: [Call("queue", body={}), Call("my job", body=_job(w.a.ai_queued))],
            lambda w: [
                Call("B's job", body=_job(w.b.ai_queued)),
                Call("the queue", body={}, expect=SEEN),
            ],
        ),
        f"{rh}/start": Requests(
            lambda w: [Call("start", body=_job(w.a.ai_pending))],
            lambda w: [Call("start B's job", body=_job(w.b.ai_pending))],
        ),
        f"{rh}/finish": Requests(
            lambda w: [
                Call("fail", body=_job(w.a.ai_queued, status="failed", errorMessage="x")),
                Call(
                    "complete",
                    accepts=SERVICE_ONLY,
                    body=_job(
                        w.a.ai_running, status="completed", outputs=[{"fileUrl": "https://x/o.png"}]
                    ),
                ),
            ],
            lambda w: [
                Call(f"fail B's {j}", body=_job(getattr(w.b, j), status="failed"))
                for j in ("ai_queued", "ai_running")
            ],
            lambda w: [
                Call(
                    "fail with a message",
                    body=_job(
                        w.a.ai_queued, status="failed", errorMessage=f"{EMAIL} {CPF} {PASSWORD}"
                    ),
                )
            ],
        ),
        f"{rh}/ledger": Requests(
            lambda w: [Call("own ledger", body={}, accepts=USER_ONLY)],
            lambda w: [Call("own ledger, not B's", body={}, accepts=USER_ONLY, expect=SEEN)],
        ),
        f"{rh}/jobs": Requests(
            lambda w: [Call("own jobs", body={}, accepts=USER_ONLY)],
            lambda w: [Call("own jobs, not B's", body={}, accepts=USER_ONLY, expect=SEEN)],
        ),
        f"{rh}/cancel": Requests(
            lambda w: [Call("cancel", body=_job(w.a.ai_pending))],
            lambda w: [
                Call(f"cancel B's {j}", body=_job(getattr(w.b, j)))
                for j in ("ai_pending", "ai_queued", "ai_running")
            ],
        ),
        f"{rh}/webhook": Requests(
            lambda w: [_task_end(w, w.a.ai_running, w.a.task_id)],
            lambda w: [
                _task_end(w, w.b.ai_running, w.b.task_id, sig_for=w.a.ai_running),
                _task_end(w, w.b.ai_running, w.a.task_id, sig_for=w.a.ai_running),
            ],
            lambda w: [
                _task_end(w, w.a.ai_running, w.a.task_id, reason=f"{EMAIL} {CPF} {PASSWORD}")
            ],
        ),
        f"{rh}/create": Requests(
            lambda w: [
                Call("create", accepts=USER_ONLY, body={"table": IMAGE, "workflowId": WORKFLOW})
            ],
            lambda w: [
                Call(
                    "create for B",
                    body={"table": IMAGE, "workflowId": WORKFLOW, "userId": str(w.b.admin)},
                ),
                Call(
                    "create over B's job id",
                    body={"table": IMAGE, "workflowId": WORKFLOW, "id": str(w.b.ai_pending)},
                    expect=frozenset({401, 403, 404, 409}),  # taken, whoever has it
                    echoes=frozenset({"B ai_pending"}),
                ),
            ],
        ),
    }


def _schedules_and_alerts() -> dict[str, Requests]:
    def schedule(tenant: object, **more: str) -> dict[str, str]:
        return {"tenant_id": str(tenant), "provider_slug": "acessorias", **more}

    return {
        "integration-schedules": Requests(
            lambda w: [
                Call("list", "GET", query={"tenant_id": str(w.a.id)}),
                Call("set", "PUT", body=schedule(w.a.id, cron="0 2 * * *")),
                Call("delete", "DELETE", body=schedule(w.a.id)),
            ],
            lambda w: [
                Call("list B", "GET", query={"tenant_id": str(w.b.id)}),
                Call("set B's", "PUT", body=schedule(w.b.id, cron="* * * * *")),
                Call("delete B's", "DELETE", body=schedule(w.b.id)),
            ],
        ),
        "integrations-dashboard": Requests(lambda w: [Call("page", "GET")], lambda w: []),
        "my-tenants": Requests(
            lambda w: [Call("mine", "GET", accepts=USER_ONLY)],
            # No tenant in the request: A's user sees A's tenants, never B's.
            lambda w: [Call("mine, not B's", "GET", accepts=USER_ONLY, expect=SEEN)],
        ),
        "list-integrations": Requests(
            lambda w: [Call("list", "GET", query={"tenant_id": str(w.a.id)})],
            lambda w: [Call("list B", "GET", query={"tenant_id": str(w.b.id)})],
        ),
        "integration-metrics": Requests(
            lambda w: [
                Call("report", "GET", query={"tenant_id": str(w.a.id), "days": "30"}),
                Call("prometheus", "GET", query={"format": "prometheus"}, accepts=SERVICE_ONLY),
            ],
            lambda w: [
                Call("report of B", "GET", query={"tenant_id": str(w.b.id)}),
                Call(
                    "B's provider",
                    "GET",
                    query={"tenant_id": str(w.b.id), "provider_slug": "onecode"},
                ),
                Call("prometheus", "GET", query={"format": "prometheus"}),
            ],
        ),
        "integration-alerts": Requests(
            lambda w: [
                Call("read", "GET", query={"tenant_id": str(w.a.id)}),
                Call("set", "PUT", body={"tenant_id": str(w.a.id), "emails": ["ops@a.example"]}),
            ],
            lambda w: [
                Call("read B", "GET", query={"tenant_id": str(w.b.id)}),
                Call(
                    "point B's alerts at us",
                    "PUT",
                    body={"tenant_id": str(w.b.id), "emails": ["thief@evil.example"]},
                ),
            ],
            lambda w: [
                Call(
                    "recipients are personal data",
                    "PUT",
                    body={
                        "tenant_id": str(w.a.id),
                        "emails": [EMAIL],
                        "webhook_url": f"https://hooks.example/{PASSWORD}",
                    },
                )
            ],
        ),
    }


REQUESTS: dict[str, Requests] = {
    **_queue(), **_gestao(), **_credits(), **_schedules_and_alerts()
}  # fmt: skip
ANTICIPATED: frozenset[str] = frozenset()


def requests_for(endpoint_id: str) -> Requests:
    """The endpoint's requests, or a failure telling what to do."""
    found = REQUESTS.get(endpoint_id)
    if found is None:
        raise LookupError(
            f"{endpoint_id}: the security matrices do not know how to call it; add a request "
            "for it in tests/security/requests.py (or list it in PUBLIC with the reason)"
        )
    return found
