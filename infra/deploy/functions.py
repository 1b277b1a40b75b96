"""What each function needs in production: runtime, limits, identity and who may call it.

One row per deployed function (DESIGN.md §5). `deploy.py` turns a row into the gcloud
command; `iam.sh` creates the service accounts named here. Sizing notes:

* Workers (`process-integration-job`, the sync functions) run one job at a time
  (concurrency 1): a sync is CPU- and DB-bound, and one lease per instance keeps the
  heartbeat honest. Their timeout (540 s) stays below the stale limit (STALE_AFTER_S,
  600 s), so a job whose instance was killed is rescued only after it is surely dead.
* Every instance keeps a small psycopg pool (DB_POOL_MAX), and an instance serving event
  streams one LISTEN connection shared by all of them; the database must hold
  `connection_budget()` connections at full scale (see the README for the figure: size
  Cloud SQL's max_connections above it, or put a transaction pooler in front and lower the
  pools).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

WORKER_INVOKERS = ("syncq-tasks", "syncq-scheduler")
BASE_SECRETS = ("syncq-database-url", "syncq-jwt-secret")
ALERT_SECRETS = ("syncq-smtp-password", "syncq-alert-webhook-secret")
RUNNINGHUB_SECRETS = ("syncq-runninghub-api-key", "syncq-runninghub-webhook-secret")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    service_account: str  # runtime identity (without @project.iam...)
    timeout_s: int = 60
    memory: str = "256Mi"
    cpu: str = "1"
    max_instances: int = 5
    min_instances: int = 0
    concurrency: int = 20
    pool_max: int = 2
    streams: bool = False  # the instance holds one LISTEN connection for its streams
    public: bool = True  # callers authenticate with our JWTs (or a webhook secret)
    invokers: tuple[str, ...] = ()  # service accounts granted run.invoker when not public
    secrets: tuple[str, ...] = field(default=BASE_SECRETS)

    @property
    def connections(self) -> int:
        """Connections this function may hold with every instance busy."""
        per_instance = self.pool_max + (1 if self.streams else 0)
        return self.max_instances * per_instance


def _worker(name: str, *, public: bool, max_instances: int) -> FunctionSpec:
    # pool_max 3: a sync upserts on LISTING_WRITERS (2) connections at once, and its
    # heartbeat needs a third.
    return FunctionSpec(
        name, "syncq-worker", timeout_s=540, memory="512Mi", max_instances=max_instances,
        concurrency=1, pool_max=3, public=public,
        invokers=() if public else WORKER_INVOKERS,
    )  # fmt: skip


def _api(name: str, service_account: str) -> FunctionSpec:
    return FunctionSpec(name, service_account, timeout_s=30, max_instances=10, pool_max=3)


SPECS: dict[str, FunctionSpec] = {
    s.name: s
    for s in (
        _api("run-integration", "syncq-api"),
        FunctionSpec("cancel-integration-job", "syncq-api", timeout_s=30),
        _api("list-integration-jobs", "syncq-api"),
        FunctionSpec(
            "integration-job-events",
            "syncq-api",
            timeout_s=3600,
            max_instances=4,
            concurrency=25,
            pool_max=2,  # streams re-read changed rows through the pool
            streams=True,
        ),
        # The worker also delivers alerts (SMTP password, webhook signing secret), and its
        # minute sweep starts queued renders and asks RunningHub about running ones.
        replace(
            _worker("process-integration-job", public=False, max_instances=10),
            secrets=(*BASE_SECRETS, *ALERT_SECRETS, *RUNNINGHUB_SECRETS),
        ),
        _api("integration-schedules", "syncq-api"),
        # The dashboard's reads: one short query each, so one connection per instance.
        FunctionSpec("list-integrations", "syncq-api", timeout_s=30, pool_max=1),
        FunctionSpec("my-tenants", "syncq-api", timeout_s=30, max_instances=3, pool_max=1),
        # Static files only: no database, no secrets; many browsers per instance.
        FunctionSpec(
            "integrations-dashboard",
            "syncq-api",
            timeout_s=30,
            concurrency=80,
            pool_max=0,
            secrets=(),
        ),
        replace(
            _api("integration-alerts", "syncq-api"),
            secrets=(*BASE_SECRETS, "syncq-alert-webhook-secret"),
        ),
        _worker("sync-acessorias", public=True, max_instances=5),
        _worker("sync-onecode-contacts", public=True, max_instances=5),
        _worker("sync-bomcontrole", public=True, max_instances=5),
        # One /start may create up to RUNNINGHUB_MAX_SLOTS tasks (15 s timeout each, retried
        # only when the request cannot have arrived): give it room beyond the API's 30 s.
        FunctionSpec(
            "runninghub-queue-manager",
            "syncq-credits",
            timeout_s=120,
            max_instances=10,
            pool_max=3,
            secrets=(*BASE_SECRETS, *RUNNINGHUB_SECRETS),
        ),
        # Pool 2: the runner's reader builds the next page while its checkpoints go on.
        FunctionSpec(
            "export-to-gestao-scouter-batch",
            "syncq-export",
            timeout_s=540,
            memory="512Mi",
            concurrency=1,
            pool_max=2,
        ),
        # Each asks the remote: a request may take GESTAO_SCOUTER_TIMEOUT_S for each of its
        # tries (about 2 min at the defaults, `remote_request_s`). The schema check makes one
        # request, the config check four without retries (the last deletes its probe row, so
        # it must not be cut short), the reload three: room for each, never a platform 504.
        FunctionSpec(
            "validate-gestao-scouter-schema", "syncq-export", timeout_s=180, max_instances=3
        ),
        FunctionSpec(
            "reload-gestao-scouter-schema-cache", "syncq-export", timeout_s=540, max_instances=3
        ),
        FunctionSpec(
            "validate-gestao-scouter-config", "syncq-export", timeout_s=180, max_instances=3
        ),
        _api("sync-from-gestao-scouter", "syncq-export"),
        # Read-only: dashboards and a Prometheus scrape; one pooled connection per request.
        FunctionSpec("integration-metrics", "syncq-api", timeout_s=30, max_instances=3),
    )
}


def connection_budget() -> int:
    """Postgres connections all functions may hold at full scale."""
    return sum(s.connections for s in SPECS.values())
