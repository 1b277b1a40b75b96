"""The one settings object, read from the environment once per process, grouped per
capability (`get_settings().queue.stale_after_s`). Each field is the upper-case
environment variable of its name, as before the grouping (STALE_AFTER_S)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

# The longest delay a retry may be scheduled with (and the longest lease): Cloud Tasks refuses
# a schedule_time more than 30 days ahead, and PostgreSQL and Python refuse timestamps past
# their ranges, so a larger (or infinite) value could only fail every release that uses it.
MAX_DELAY_S = 30 * 86_400.0
# The most rows a sweep's batch takes (its LIMIT): past PostgreSQL's bigint the statement
# fails, and so would every sweep; far past any batch one transaction should hold.
MAX_BATCH = 1_000_000


class _Group(BaseSettings):
    # A refused value is never quoted back: errors are logged, and values are secrets.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class DatabaseSettings(_Group):
    """The database (DATABASE_URL, the pool)."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_pool_min: int = 1
    db_pool_max: int = 8
    # A wait the pool and libpq both keep (libpq's 0 or less is no limit at all).
    db_connect_timeout_s: float = Field(10.0, gt=0, le=MAX_DELAY_S, allow_inf_nan=False)
    # PostgreSQL's own range for statement_timeout (0: none); outside, no connection opens.
    db_statement_timeout_ms: int = Field(60_000, ge=0, le=2_147_483_647)

    @field_validator("database_url")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            conninfo_to_dict(value)
        except psycopg.ProgrammingError:  # its message quotes the URL, password and all
            raise ValueError("not a valid PostgreSQL connection string") from None
        return value


class AuthSettings(_Group):
    """Who is calling: user JWTs, JWKS, the service's OIDC tokens."""

    jwt_secret: SecretStr | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwks_url: str | None = None
    service_auth: Literal["jwt", "oidc"] = "jwt"
    oidc_audience: str | None = Field(None, validate_default=True)
    oidc_service_accounts: tuple[str, ...] = ()
    oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"

    @field_validator("oidc_audience")
    @classmethod
    def _audience_for_oidc(cls, value: str | None, info: ValidationInfo) -> str | None:
        # google-auth checks no audience when given None: any token Google signed for an
        # allowed service account, whatever service it was minted for, would be the service.
        if info.data.get("service_auth") == "oidc" and not value:
            raise ValueError("required when SERVICE_AUTH is oidc")
        return value


class TasksSettings(_Group):
    """Re-dispatch through Cloud Tasks."""

    dispatcher: Literal["cloudtasks", "recording", "disabled"] = "cloudtasks"
    tasks_emulator_host: str | None = None
    gcp_project: str = "syncq-local"
    gcp_location: str = "us-central1"
    tasks_queue: str = "syncq"
    tasks_service_account: str | None = None
    functions_base_url: str = "http://127.0.0.1:8080/functions/v1"
    # A deadline of 0 s or less, NaN, infinite or past what gRPC can hold fails every
    # create_task at once (Cloud Tasks up or not); an infinite pause sends nothing after the
    # first hang. Either way no wake-up goes out, and an export, run only by its wake-up,
    # never runs. Refused at startup rather than met at run time.
    tasks_timeout_s: float = Field(10.0, gt=0, le=MAX_DELAY_S, allow_inf_nan=False)
    # after a failed create_task, wake-ups are not sent for this long
    tasks_pause_s: float = Field(30.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)


class SecretSettings(_Group):
    """Where per-tenant provider credentials live."""

    secret_backend: Literal["env", "gcp"] = "env"


class QueueSettings(_Group):
    """The integration queue: leases, retries, the worker's budget."""

    # A lease of 0 s (or less) hands every running job to a second worker at the next sweep;
    # a budget of 0 s claims nothing and wakes itself forever; a batch below 1 claims nothing
    # (0) or fails every claim (negative). Refused at startup rather than met at run time.
    stale_after_s: int = Field(600, gt=0, le=MAX_DELAY_S)
    backoff_base_s: float = Field(30.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    backoff_cap_s: float = Field(3600.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    worker_budget_s: float = Field(240.0, gt=0, le=MAX_DELAY_S, allow_inf_nan=False)
    claim_batch: int = Field(1, ge=1, le=1000)


class ScheduleSettings(_Group):
    """Scheduled syncs: the minute sweep's tick."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULE_", extra="ignore", frozen=True)

    grace_s: float = 300.0  # an occurrence later than this counts as missed
    max_catch_up: int = 24  # `all`: at most this many missed occurrences run
    # schedules per transaction: 0 takes none (and spins for the whole budget), negative
    # fails every tick; a tick without budget takes no batch. Either way no schedule runs.
    tick_batch: int = Field(1000, ge=1, le=MAX_BATCH)  # past bigint, LIMIT fails every tick
    tick_budget_s: float = Field(30.0, gt=0, le=MAX_DELAY_S, allow_inf_nan=False)


class AlertDeliverySettings(_Group):
    """Failure alerts: e-mail (SMTP or SES) and signed webhooks."""

    alert_email_transport: Literal["disabled", "smtp", "ses"] = "disabled"
    alert_email_from: str = "syncq <alertas@syncq.local>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 15.0
    ses_region: str = "us-east-1"
    alert_webhook_secret: SecretStr | None = None  # per-tenant signing keys derive from it
    alert_webhook_allow_http: bool = False  # https only, unless (locally) this is set
    alert_webhook_timeout_s: float = 10.0
    alert_max_attempts: int = 8
    alert_backoff_base_s: float = Field(30.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    alert_backoff_cap_s: float = Field(3600.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    alert_stale_after_s: float = Field(300.0, gt=0, le=MAX_DELAY_S, allow_inf_nan=False)


class EdgeSettings(_Group):
    """The HTTP edge: bodies, CORS, event streams."""

    max_body_bytes: int = 256 * 1024
    # Browsers call the functions directly (bearer tokens, no cookies): which origins may.
    cors_allowed_origins: tuple[str, ...] = ("*",)
    sse_max_seconds: float = 300.0
    sse_ping_s: float = 15.0
    # Open event streams one process serves per user and per tenant (429 beyond). Each holds
    # a thread for up to SSE_MAX_SECONDS: a tenant's cap stays well below an instance's
    # threads (25 deployed), so one tenant's tabs never leave another's stream unanswered.
    sse_max_streams_per_user: int = 5
    sse_max_streams_per_tenant: int = 10
    # The shared LISTEN connection reconnects after a drop with this backoff.
    sse_listener_retry_base_s: float = 0.5
    sse_listener_retry_cap_s: float = 30.0
    # After this long without a notification it sends itself one; unanswered within the
    # timeout, the connection has gone silent (a stalled proxy, a dark network) and is
    # replaced.
    sse_listener_probe_s: float = 30.0
    sse_listener_probe_timeout_s: float = 10.0


class ProviderSettings(_Group):
    """Provider APIs (Acessórias, OneCode, BomControle) and paging."""

    provider_timeout_s: float = 30.0
    provider_retry_attempts: int = 6
    provider_retry_base_s: float = 1.0
    provider_retry_cap_s: float = 30.0
    acessorias_base_url: str = "https://api.acessorias.com"
    acessorias_empty_rechecks: int = 2
    acessorias_empty_recheck_s: float = 3.0
    acessorias_max_pages: int = 10_000
    # The published limit per token (a sliding window): requests wait rather than get a 429.
    acessorias_rate_limit: int = 100
    acessorias_rate_window_s: float = 60.0

    # OneCode has one host per tenant: `{tenant}` is the integration's config "subdomain"
    # (else the tenant slug); a config "base_url" replaces the whole template.
    onecode_base_url: str = "https://api-{tenant}.onecode.chat"
    onecode_page_size: int = 100
    onecode_max_pages: int = 10_000
    bomcontrole_base_url: str = "https://apinewintegracao.bomcontrole.com.br"
    bomcontrole_page_size: int = 100
    bomcontrole_max_pages: int = 10_000
    # Incremental window: from the last successful run's start minus this overlap.
    bomcontrole_overlap_s: float = 900.0
    bomcontrole_first_sync_from: str = "2000-01-01 00:00:00"
    # BomControle's clock is Brasília local time without an offset (no DST since 2019).
    bomcontrole_utc_offset_hours: float = -3.0
    # Full passes over a listing when rows shift between pages while we read it.
    listing_passes: int = 3
    # Pages requested ahead while the current page is stored (0 = strictly one at a time).
    # More than one upsert batch's worth (500 rows = 5 pages of 100), so fetching goes on
    # while a batch is written (bench_onecode: ~3.7 s -> ~3.4 s for 50k contacts).
    listing_fetch_ahead: int = 8
    # Rows (whole pages) per upsert statement, and at most one heartbeat per this interval
    # (far below STALE_AFTER_S; a cancel is noticed at the next heartbeat, between pages).
    listing_batch_rows: int = 500
    # Batches upserted at once, each in its own transaction and pooled connection (keep
    # DB_POOL_MAX above this: the heartbeat needs a connection too).
    listing_writers: int = 2
    listing_heartbeat_s: float = 1.0


class CreditsSettings(_Group):
    """The credits queue manager and RunningHub."""

    model_config = SettingsConfigDict(env_prefix="RUNNINGHUB_", extra="ignore", frozen=True)

    base_url: str = "https://www.runninghub.ai"
    api_key: SecretStr | None = None
    max_slots: int = 3  # concurrent tasks the account allows (421 beyond)
    timeout_s: float = 15.0
    retry_attempts: int = 3
    # default: <functions_base_url>/runninghub-queue-manager/webhook
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None  # signs each job's webhook URL
    # The sweep's ages go to make_interval (out of range past ~1e15 s: every sweep fails)
    # and its batch to LIMIT (0 checks and expires nothing: held credits never refunded).
    check_after_s: int = Field(300, ge=0, le=MAX_DELAY_S)  # slot holders this old are asked
    max_runtime_s: int = 6 * 3600  # ... and fails those running longer
    sweep_batch: int = Field(100, ge=1, le=MAX_BATCH)
    pump_rounds: int = Field(20, ge=1)  # promotion rounds per /start or sweep (0: none start)
    # One user's jobs queued or holding a slot; /start answers 429 beyond. Room for a batch:
    # slots are shared fairly (fewest held first), so a big queue never starves others.
    max_active_per_user: int = 20
    max_queue_wait_s: int = Field(3600, ge=0, le=MAX_DELAY_S)  # then failed (and refunded)


class GestaoSettings(_Group):
    """The Gestão Scouter export and sync."""

    model_config = SettingsConfigDict(env_prefix="GESTAO_SCOUTER_", extra="ignore", frozen=True)

    # Leads in the first batch; then it adapts (shared/gestao/batches.BatchSizer).
    # A job's batch_size column holds 1..10000: a size past it failed the export's start, or
    # the release of a run that grew past it (the job left running until the sweep).
    batch_size: int = Field(1000, ge=1, le=10_000)
    max_batch_size: int = Field(5000, ge=1, le=10_000)
    max_batch_bytes: int = 1024 * 1024  # under common proxy body limits
    fast_answer_s: float = 2.0  # a batch answered faster grows the next
    in_flight: int = 3  # upsert requests pipelined per runner
    timeout_s: float = 30.0
    retries: int = 3  # retries after the first try (5xx, 429, timeouts)
    retry_base_s: float = 1.0
    retry_cap_s: float = 20.0
    budget_s: float = 240.0  # then the runner re-dispatches itself
    # a runner silent this long is restarted
    stale_after_s: float = Field(300.0, gt=0, le=MAX_DELAY_S, allow_inf_nan=False)
    max_failing_batches: int = 3  # consecutive, then the job pauses
    failure_backoff_s: float = Field(30.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    failure_backoff_cap_s: float = Field(600.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    schema_cache_s: float = 300.0
    reload_wait_s: float = 5.0


def _field(group: type[_Group], key: str) -> str:
    """The group's field for a flat name: itself, or without the group's env prefix
    (`gestao_scouter_batch_size` -> GestaoSettings.batch_size); "" when it has none."""
    prefix = str(group.model_config.get("env_prefix") or "").lower()
    for name in (key, key.removeprefix(prefix) if prefix else key):
        if name in group.model_fields:
            return name
    return ""


class MetricsSettings(_Group):
    """Sync metrics (integration-metrics)."""

    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore", frozen=True)

    # Expected time between two runs of a (tenant, provider) without a schedule: freshness is
    # `delayed` after one period without a success, `failing` after two.
    default_period_s: float = 86_400.0
    # How long a scheduled run (its occurrence plus its spread offset) may take before its
    # success is expected (at most half the gap to the run before).
    run_grace_s: float = 900.0


GROUPS: dict[str, type[_Group]] = {
    "db": DatabaseSettings,
    "auth": AuthSettings,
    "tasks": TasksSettings,
    "secrets": SecretSettings,
    "queue": QueueSettings,
    "schedules": ScheduleSettings,
    "alerts": AlertDeliverySettings,
    "edge": EdgeSettings,
    "providers": ProviderSettings,
    "credits": CreditsSettings,
    "gestao": GestaoSettings,
    "metrics": MetricsSettings,
}


class Settings(BaseModel):
    """Every knob syncq has, one group per capability."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tasks: TasksSettings = Field(default_factory=TasksSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    alerts: AlertDeliverySettings = Field(default_factory=AlertDeliverySettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    credits: CreditsSettings = Field(default_factory=CreditsSettings)
    gestao: GestaoSettings = Field(default_factory=GestaoSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Each group read from the environment; flat keyword values (`Settings(
        stale_after_s=5)`, as tests give them) go to the group that has the field."""
        given = dict(data) if isinstance(data, dict) else {}
        built: dict[str, Any] = {}
        refused: list[str] = []
        for name, group in GROUPS.items():
            if isinstance(given.get(name), _Group):
                built[name] = given.pop(name)
                continue
            mine = {_field(group, k): given.pop(k) for k in list(given) if _field(group, k)}
            try:
                built[name] = group(**mine)
            except ValidationError as exc:  # named as the operator sets it, never quoted
                refused.extend(_refused(group, exc))
            except SettingsError as exc:  # a value that should be JSON and is not
                field = _NAMED_FIELD.search(str(exc))
                prefix = group.model_config.get("env_prefix") or ""
                variable = f"{prefix}{field[1] if field else name}".upper()
                refused.append(f"{variable}: not valid JSON")
        if refused:
            raise SettingsRefused(refused)
        if given:
            raise ValueError(f"unknown settings: {sorted(given)}")
        return built


class SettingsRefused(ValueError):
    """Settings the code cannot work with, each named by its variable, never quoted (a
    value may be a secret): `STALE_AFTER_S: Input should be greater than 0`."""

    def __init__(self, refused: list[str]) -> None:
        super().__init__("refused settings: " + "; ".join(refused))
        self.refused = refused


_NAMED_FIELD = re.compile(r'field "(\w+)"')


def _refused(group: type[_Group], exc: ValidationError) -> list[str]:
    prefix = group.model_config.get("env_prefix") or ""
    return [
        f"{prefix}{'.'.join(map(str, e['loc']))}".upper()
        + f": {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False, include_input=False)
    ]


def refused_settings(exc: ValidationError) -> list[str]:
    """One line per refused setting (`Invalid setting STALE_AFTER_S: Input should be greater
    than 0.`): what the CLI and `make run` say instead of a traceback."""
    lines: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        cause = error.get("ctx", {}).get("error")
        said = cause.refused if isinstance(cause, SettingsRefused) else [error["msg"]]
        lines.extend(f"Invalid setting {refused}." for refused in said)
    return lines


def environment_names() -> set[str]:
    """Every environment variable a setting is read from (STALE_AFTER_S, ...)."""
    return {
        f"{group.model_config.get('env_prefix') or ''}{name}".upper()
        for group in GROUPS.values()
        for name in group.model_fields
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
    return get_settings()
