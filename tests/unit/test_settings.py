"""Settings grouped per capability, read from the environment variables they always had."""

from __future__ import annotations

import pytest

from shared.settings import GROUPS, Settings, environment_names

# Every variable of the flat settings before the grouping: each still means its setting.
BEFORE_THE_GROUPING = (
    "ACESSORIAS_BASE_URL",
    "ACESSORIAS_EMPTY_RECHECKS",
    "ACESSORIAS_EMPTY_RECHECK_S",
    "ACESSORIAS_MAX_PAGES",
    "ALERT_BACKOFF_BASE_S",
    "ALERT_BACKOFF_CAP_S",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TRANSPORT",
    "ALERT_MAX_ATTEMPTS",
    "ALERT_STALE_AFTER_S",
    "ALERT_WEBHOOK_ALLOW_HTTP",
    "ALERT_WEBHOOK_SECRET",
    "ALERT_WEBHOOK_TIMEOUT_S",
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "BOMCONTROLE_BASE_URL",
    "BOMCONTROLE_FIRST_SYNC_FROM",
    "BOMCONTROLE_MAX_PAGES",
    "BOMCONTROLE_OVERLAP_S",
    "BOMCONTROLE_PAGE_SIZE",
    "BOMCONTROLE_UTC_OFFSET_HOURS",
    "CLAIM_BATCH",
    "CORS_ALLOWED_ORIGINS",
    "DATABASE_URL",
    "DB_CONNECT_TIMEOUT_S",
    "DB_POOL_MAX",
    "DB_POOL_MIN",
    "DB_STATEMENT_TIMEOUT_MS",
    "DISPATCHER",
    "FUNCTIONS_BASE_URL",
    "GCP_LOCATION",
    "GCP_PROJECT",
    "GESTAO_SCOUTER_BATCH_SIZE",
    "GESTAO_SCOUTER_BUDGET_S",
    "GESTAO_SCOUTER_FAILURE_BACKOFF_CAP_S",
    "GESTAO_SCOUTER_FAILURE_BACKOFF_S",
    "GESTAO_SCOUTER_FAST_ANSWER_S",
    "GESTAO_SCOUTER_IN_FLIGHT",
    "GESTAO_SCOUTER_MAX_BATCH_BYTES",
    "GESTAO_SCOUTER_MAX_BATCH_SIZE",
    "GESTAO_SCOUTER_MAX_FAILING_BATCHES",
    "GESTAO_SCOUTER_RELOAD_WAIT_S",
    "GESTAO_SCOUTER_RETRIES",
    "GESTAO_SCOUTER_RETRY_BASE_S",
    "GESTAO_SCOUTER_RETRY_CAP_S",
    "GESTAO_SCOUTER_SCHEMA_CACHE_S",
    "GESTAO_SCOUTER_STALE_AFTER_S",
    "GESTAO_SCOUTER_TIMEOUT_S",
    "JWKS_URL",
    "JWT_AUDIENCE",
    "JWT_ISSUER",
    "JWT_SECRET",
    "LISTING_BATCH_ROWS",
    "LISTING_FETCH_AHEAD",
    "LISTING_HEARTBEAT_S",
    "LISTING_PASSES",
    "LISTING_WRITERS",
    "MAX_BODY_BYTES",
    "OIDC_AUDIENCE",
    "OIDC_CERTS_URL",
    "OIDC_SERVICE_ACCOUNTS",
    "ONECODE_BASE_URL",
    "ONECODE_MAX_PAGES",
    "ONECODE_PAGE_SIZE",
    "PROVIDER_RETRY_ATTEMPTS",
    "PROVIDER_RETRY_BASE_S",
    "PROVIDER_RETRY_CAP_S",
    "PROVIDER_TIMEOUT_S",
    "RUNNINGHUB_API_KEY",
    "RUNNINGHUB_BASE_URL",
    "RUNNINGHUB_CHECK_AFTER_S",
    "RUNNINGHUB_MAX_ACTIVE_PER_USER",
    "RUNNINGHUB_MAX_QUEUE_WAIT_S",
    "RUNNINGHUB_MAX_RUNTIME_S",
    "RUNNINGHUB_MAX_SLOTS",
    "RUNNINGHUB_PUMP_ROUNDS",
    "RUNNINGHUB_RETRY_ATTEMPTS",
    "RUNNINGHUB_SWEEP_BATCH",
    "RUNNINGHUB_TIMEOUT_S",
    "RUNNINGHUB_WEBHOOK_SECRET",
    "RUNNINGHUB_WEBHOOK_URL",
    "SCHEDULE_GRACE_S",
    "SCHEDULE_MAX_CATCH_UP",
    "SCHEDULE_TICK_BATCH",
    "SCHEDULE_TICK_BUDGET_S",
    "SECRET_BACKEND",
    "SERVICE_AUTH",
    "SES_REGION",
    "SMTP_HOST",
    "SMTP_PASSWORD",
    "SMTP_PORT",
    "SMTP_STARTTLS",
    "SMTP_TIMEOUT_S",
    "SMTP_USERNAME",
    "SSE_MAX_SECONDS",
    "SSE_PING_S",
    "STALE_AFTER_S",
    "TASKS_EMULATOR_HOST",
    "TASKS_QUEUE",
    "TASKS_SERVICE_ACCOUNT",
    "TASKS_TIMEOUT_S",
    "WORKER_BUDGET_S",
)


def test_every_variable_of_the_flat_settings_is_still_read() -> None:
    assert set(BEFORE_THE_GROUPING) <= environment_names()


@pytest.mark.parametrize(
    ("variable", "where", "value", "expected"),
    [
        ("STALE_AFTER_S", ("queue", "stale_after_s"), "42", 42),
        ("GESTAO_SCOUTER_BATCH_SIZE", ("gestao", "batch_size"), "77", 77),
        ("RUNNINGHUB_MAX_SLOTS", ("credits", "max_slots"), "9", 9),
        ("SCHEDULE_GRACE_S", ("schedules", "grace_s"), "5", 5.0),
        ("DATABASE_URL", ("db", "database_url"), "postgresql://x/y", "postgresql://x/y"),
        ("SSE_MAX_STREAMS_PER_USER", ("edge", "sse_max_streams_per_user"), "3", 3),
    ],
)
def test_a_variable_sets_its_groups_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, where: tuple[str, str], value: str,
    expected: object,
) -> None:  # fmt: skip
    monkeypatch.setenv(variable, value)
    group, field = where
    assert getattr(getattr(Settings(), group), field) == expected


def test_flat_keywords_build_settings_and_unknown_ones_are_refused() -> None:
    settings = Settings(gestao_scouter_batch_size=12, runninghub_max_slots=4, stale_after_s=1)
    assert (settings.gestao.batch_size, settings.credits.max_slots) == (12, 4)
    assert settings.queue.stale_after_s == 1
    with pytest.raises(ValueError, match="unknown settings"):
        Settings(no_such_setting=1)


def test_no_field_belongs_to_two_groups() -> None:
    seen: dict[str, str] = {}
    for name, group in GROUPS.items():
        prefix = str(group.model_config.get("env_prefix") or "")
        for field in group.model_fields:
            variable = (prefix + field).upper()
            assert variable not in seen, (variable, seen.get(variable), name)
            seen[variable] = name


def test_a_database_url_that_does_not_parse_is_refused_without_being_quoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A function's settings error is logged: it must name the variable, not its value."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:s3cret%zzpw@127.0.0.1:5432/x")
    with pytest.raises(ValueError, match="not a valid PostgreSQL connection string") as refused:
        Settings()
    assert "s3cret" not in str(refused.value)


def test_no_settings_error_quotes_the_value_it_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "s3cret-looking")
    with pytest.raises(ValueError) as refused:
        Settings()
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # 0 or less: every running job is handed to a second worker at the next sweep
        ("STALE_AFTER_S", "0"),
        ("STALE_AFTER_S", "-600"),
        ("ALERT_STALE_AFTER_S", "0"),
        ("GESTAO_SCOUTER_STALE_AFTER_S", "-1"),
        # 0 claims nothing (jobs pending forever), negative fails every claim
        ("CLAIM_BATCH", "0"),
        ("CLAIM_BATCH", "-1"),
        # a worker that may claim nothing wakes another one, forever
        ("WORKER_BUDGET_S", "0"),
        # past what PostgreSQL and Python can store: every retry's release fails
        ("BACKOFF_CAP_S", "1e13"),
        ("BACKOFF_CAP_S", "inf"),
        ("BACKOFF_BASE_S", "nan"),
        ("ALERT_BACKOFF_CAP_S", "inf"),
        ("GESTAO_SCOUTER_FAILURE_BACKOFF_CAP_S", "1e13"),
        ("STALE_AFTER_S", "100000000000000000000"),  # make_interval: interval out of range
        # PostgreSQL refuses every connection's statement_timeout: every request a 503
        ("DB_STATEMENT_TIMEOUT_MS", "-1"),
        ("DB_STATEMENT_TIMEOUT_MS", "2147483648"),
        # libpq waits for ever (0 or less), the pool gives up at once
        ("DB_CONNECT_TIMEOUT_S", "0"),
        ("DB_CONNECT_TIMEOUT_S", "-10"),
        ("DB_CONNECT_TIMEOUT_S", "inf"),
        # a worker without an end never re-dispatches itself: the platform kills it mid-job
        ("WORKER_BUDGET_S", "inf"),
        ("WORKER_BUDGET_S", "nan"),
        ("WORKER_BUDGET_S", "1e13"),
        # past the most one claim takes
        ("CLAIM_BATCH", "1001"),
        # Cloud Tasks: a deadline of 0 fails every create_task; an endless pause sends no
        # wake-up again after the first failure (an export, run only by them, never runs)
        ("TASKS_TIMEOUT_S", "0"),
        ("TASKS_TIMEOUT_S", "inf"),
        ("TASKS_PAUSE_S", "-1"),
        ("TASKS_PAUSE_S", "inf"),
        ("TASKS_PAUSE_S", "1e13"),
        ("ALERT_BACKOFF_BASE_S", "nan"),
        ("GESTAO_SCOUTER_STALE_AFTER_S", "0"),
    ],
)
def test_engine_settings_at_their_edges_are_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """An edge value the job engine cannot work with is a clear refusal naming the
    variable when the process starts, not a job stuck or run twice at run time."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        Settings()
    assert f"refused settings: {variable}: " in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [  # values the tests and `make run` rely on stay accepted
        ("BACKOFF_BASE_S", "0"),
        ("BACKOFF_CAP_S", "0"),
        ("ALERT_BACKOFF_CAP_S", "0"),
        ("GESTAO_SCOUTER_FAILURE_BACKOFF_S", "0"),
        ("GESTAO_SCOUTER_STALE_AFTER_S", "0.3"),
        ("STALE_AFTER_S", "1"),
        ("CLAIM_BATCH", "2"),
        ("WORKER_BUDGET_S", "1.5"),
        ("CLAIM_BATCH", "1000"),
        ("TASKS_PAUSE_S", "0"),
        ("TASKS_TIMEOUT_S", "0.5"),
        ("DB_STATEMENT_TIMEOUT_MS", "0"),
        ("DB_STATEMENT_TIMEOUT_MS", "2147483647"),
        ("GESTAO_SCOUTER_BATCH_SIZE", "10000"),
        ("GESTAO_SCOUTER_MAX_BATCH_SIZE", "1"),
    ],
)
def test_engine_settings_near_their_edges_are_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # 0 takes no schedule and, 0 < 0 being false, spins empty transactions for the whole
        # tick budget: every due schedule stays due; negative fails every sweep (LIMIT -1)
        ("SCHEDULE_TICK_BATCH", "0"),
        ("SCHEDULE_TICK_BATCH", "-1"),
        # a tick with no budget never takes a batch: no scheduled run is ever enqueued
        ("SCHEDULE_TICK_BUDGET_S", "0"),
        ("SCHEDULE_TICK_BUDGET_S", "nan"),
        # 0 checks no slot holder and expires no queued job: their credits are never refunded
        ("RUNNINGHUB_SWEEP_BATCH", "0"),
        ("RUNNINGHUB_SWEEP_BATCH", "-1"),
        # no promotion round: queued renders never start
        ("RUNNINGHUB_PUMP_ROUNDS", "0"),
        # make_interval: interval out of range, so every sweep fails before its refunds
        ("RUNNINGHUB_CHECK_AFTER_S", "100000000000000000000"),
        ("RUNNINGHUB_MAX_QUEUE_WAIT_S", "100000000000000000000"),
        # past the export job's batch_size column (1..10000): its start, or the release of a
        # run grown past it, failed (the job left running until the sweep)
        ("GESTAO_SCOUTER_BATCH_SIZE", "20000"),
        ("GESTAO_SCOUTER_MAX_BATCH_SIZE", "20000"),
        ("GESTAO_SCOUTER_BATCH_SIZE", "0"),
        ("GESTAO_SCOUTER_MAX_BATCH_SIZE", "0"),  # no batch could ever be sent
        # LIMIT past bigint: "bigint out of range", so every tick (sweep) fails
        ("SCHEDULE_TICK_BATCH", "100000000000000000000"),
        ("RUNNINGHUB_SWEEP_BATCH", "100000000000000000000"),
    ],
)
def test_sweep_settings_that_leave_work_stuck_are_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """The schedule tick's and the credits sweep's batch, budget and ages have the hazards
    of CLAIM_BATCH and STALE_AFTER_S: refused when the process starts, naming the field."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        Settings()
    assert f"refused settings: {variable}: " in str(refused.value)


@pytest.mark.parametrize("audience", [None, ""])
def test_oidc_service_auth_without_an_audience_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, audience: str | None
) -> None:
    """google-auth checks no audience when it is given none: with SERVICE_AUTH=oidc and no
    OIDC_AUDIENCE, a token Google signed for an allowed service account for any other
    service (another Cloud Run URL, any audience) was taken as the service's."""
    monkeypatch.setenv("SERVICE_AUTH", "oidc")
    monkeypatch.setenv("OIDC_SERVICE_ACCOUNTS", '["tasks@proj.iam.gserviceaccount.com"]')
    if audience is None:
        monkeypatch.delenv("OIDC_AUDIENCE", raising=False)
    else:
        monkeypatch.setenv("OIDC_AUDIENCE", audience)
    with pytest.raises(ValueError) as refused:
        Settings()
    assert "refused settings: OIDC_AUDIENCE: required when SERVICE_AUTH is oidc" in str(
        refused.value
    )
    monkeypatch.setenv("OIDC_AUDIENCE", "https://fn.example/worker")
    assert Settings().auth.oidc_audience == "https://fn.example/worker"
    monkeypatch.setenv("SERVICE_AUTH", "jwt")
    monkeypatch.delenv("OIDC_AUDIENCE")
    assert Settings().auth.oidc_audience is None  # only the OIDC mode needs it


def test_a_value_that_should_be_json_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OIDC_SERVICE_ACCOUNTS", "tasks@proj.iam.gserviceaccount.com")
    with pytest.raises(ValueError) as refused:
        Settings()
    assert "refused settings: OIDC_SERVICE_ACCOUNTS: not valid JSON" in str(refused.value)
