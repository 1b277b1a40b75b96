"""The one settings object, read from the environment once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob syncq has. Names map to upper-case environment variables."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # Database
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_pool_min: int = 1
    db_pool_max: int = 8
    db_connect_timeout_s: float = 10.0
    db_statement_timeout_ms: int = 60_000

    # Authentication
    jwt_secret: SecretStr | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwks_url: str | None = None
    service_auth: Literal["jwt", "oidc"] = "jwt"
    oidc_audience: str | None = None
    oidc_service_accounts: tuple[str, ...] = ()
    oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"

    # Re-dispatch (Cloud Tasks)
    dispatcher: Literal["cloudtasks", "recording", "disabled"] = "cloudtasks"
    tasks_emulator_host: str | None = None
    gcp_project: str = "syncq-local"
    gcp_location: str = "us-central1"
    tasks_queue: str = "syncq"
    tasks_service_account: str | None = None
    functions_base_url: str = "http://127.0.0.1:8080/functions/v1"
    tasks_timeout_s: float = 10.0

    # Secrets
    secret_backend: Literal["env", "gcp"] = "env"

    # Queue behaviour
    stale_after_s: int = 600
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 3600.0
    worker_budget_s: float = 240.0
    claim_batch: int = 1

    # HTTP edge
    max_body_bytes: int = 256 * 1024
    # Browsers call the functions directly (bearer tokens, no cookies): which origins may.
    cors_allowed_origins: tuple[str, ...] = ("*",)
    sse_max_seconds: float = 300.0
    sse_ping_s: float = 15.0

    # Providers
    provider_timeout_s: float = 30.0
    provider_retry_attempts: int = 6
    provider_retry_base_s: float = 1.0
    provider_retry_cap_s: float = 30.0
    acessorias_base_url: str = "https://api.acessorias.com"
    acessorias_empty_rechecks: int = 2
    acessorias_empty_recheck_s: float = 3.0
    acessorias_max_pages: int = 10_000

    # --- OneCode / BomControle (issue 4) ---
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

    # --- credits queue manager / RunningHub (issue 5) ---
    runninghub_base_url: str = "https://www.runninghub.ai"
    runninghub_api_key: SecretStr | None = None
    runninghub_max_slots: int = 3  # concurrent tasks the account allows (421 beyond)
    runninghub_timeout_s: float = 15.0
    runninghub_retry_attempts: int = 3
    # default: <functions_base_url>/runninghub-queue-manager/webhook
    runninghub_webhook_url: str | None = None
    runninghub_webhook_secret: SecretStr | None = None  # signs each job's webhook URL
    runninghub_check_after_s: int = 300  # the sweep asks RunningHub about slot holders this old
    runninghub_max_runtime_s: int = 6 * 3600  # ... and fails those running longer
    runninghub_sweep_batch: int = 100
    runninghub_pump_rounds: int = 20  # promotion rounds per /start or sweep
    # One user's jobs queued or holding a slot; /start answers 429 beyond (below max_slots,
    # so one user never holds every slot).
    runninghub_max_active_per_user: int = 2
    runninghub_max_queue_wait_s: int = 3600  # the sweep fails (and refunds) a longer wait

    # --- Gestão Scouter export and sync (issue 6) ---
    gestao_scouter_batch_size: int = 50
    gestao_scouter_in_flight: int = 2  # upsert requests pipelined per runner
    gestao_scouter_timeout_s: float = 30.0
    gestao_scouter_retries: int = 3  # retries after the first try (5xx, 429, timeouts)
    gestao_scouter_retry_base_s: float = 1.0
    gestao_scouter_retry_cap_s: float = 20.0
    gestao_scouter_budget_s: float = 240.0  # then the runner re-dispatches itself
    gestao_scouter_stale_after_s: float = 300.0  # a runner silent this long is restarted
    gestao_scouter_max_failing_batches: int = 3  # consecutive, then the job pauses
    gestao_scouter_failure_backoff_s: float = 30.0
    gestao_scouter_failure_backoff_cap_s: float = 600.0
    gestao_scouter_schema_cache_s: float = 300.0
    gestao_scouter_reload_wait_s: float = 5.0

    # --- sync metrics (integration-metrics) ---
    # Expected time between two runs of a (tenant, provider) when no schedule says otherwise:
    # freshness is `delayed` after one period without a success, `failing` after two.
    metrics_default_period_s: float = 86_400.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
    return get_settings()
