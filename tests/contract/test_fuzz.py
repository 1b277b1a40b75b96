"""Fuzzing from the contract: schemathesis reads the gateway's OpenAPI document and sends
what it generates, in-process, to the gateway's WSGI app (every function, real PostgreSQL,
the Gestão Scouter emulator), as a tenant member, a tenant admin and the service, with
every default check: no server error, status codes, content types, headers and bodies as
documented, bad data refused, credentials enforced. The stateful test follows the
document's links: run -> list -> cancel, export start -> status -> pause.

A bounded run is part of `make test`; `make fuzz` runs it longer (FUZZ_EXAMPLES,
FUZZ_STEPS). A failure prints the request that caused it, as a curl command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.generation.modes import GenerationMode

from infra.local import gateway
from infra.local.gateway import PREFIX
from shared.alerts.channels import webhook_url_problem
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.cron import parse_cron, place_zone
from shared.gestao.mapping import DEFAULT_MAPPING
from shared.providers import PROVIDERS
from shared.queue.schemas import _no_secrets, _options
from shared.settings import get_settings
from tests.contract.conftest import PRICED_WORKFLOW, World
from tests.integration.gestao_support import SLUG, WEBHOOK_SECRET

pytest_plugins = ["tests.integration.gestao_fixtures"]  # remote_server: the Gestão emulator

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    # Connection pools and emulators use `random` in their own threads while Hypothesis
    # draws a case; it then blames the strategy. Nothing here draws from `random`.
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

# The bounded run in `make test` draws the same cases every time (a CI result one can
# reproduce); `make fuzz` sets FUZZ_EXAMPLES and draws new ones each run. Seven steps a
# scenario: that fixed walk reaches every chain the linked test asserts on.
FIXED = "FUZZ_EXAMPLES" not in os.environ
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
STEPS = int(os.environ.get("FUZZ_STEPS", "7"))
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "25"))
RUNNINGHUB_WEBHOOK_SECRET = "runninghub-webhook-secret-for-the-fuzzer-0123456789"

APP = gateway.build()
schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", APP)
_SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


@dataclass
class _Caller:
    """Who the generated requests are sent as (set per test by the `caller` fixture)."""

    world: World | None = None
    role: str = "admin"
    sent: dict[str, int] = field(default_factory=dict)


CALLER = _Caller()


@schema.auth(refresh_interval=None)  # per operation and role: never cached
class _Credentials:
    """The credentials each operation's security scheme asks for, for the current role:
    the role's JWT, the tenant's Gestão Scouter webhook secret, or a RunningHub webhook
    URL signed for the job the case names."""

    def get(self, case: Case, context: Any) -> dict[str, str] | None:
        world = CALLER.world
        if world is None:
            return None
        scheme = next(iter((case.operation.definition.raw.get("security") or [{}])[0]), None)
        if scheme == "webhookSecret":
            return {"header": f"Bearer {WEBHOOK_SECRET}"}
        if scheme == "signedUrl":
            return {"sig": _signature(case.query or {})}
        if scheme == "bearerJWT":
            return {"header": f"Bearer {world.tokens[CALLER.role]}"}
        return None

    def set(self, case: Case, data: dict[str, str], context: Any) -> None:
        if "header" in data:
            case.headers = {**(case.headers or {}), "Authorization": data["header"]}
        else:
            case.query = {**(case.query or {}), "sig": data["sig"]}


def _signature(query: dict[str, Any]) -> str:
    """The signature syncq would put in the job's webhook URL (or one for no job)."""
    try:
        key = JobKey(CreditJobTable(str(query.get("table"))), UUID(str(query.get("job"))))
    except ValueError:
        return "not-a-job"
    url = webhook_url(get_settings(), key)
    assert url is not None
    return parse_qs(urlsplit(url).query)["sig"][0]


def _storable(value: Any) -> bool:
    """No NUL and no unpaired surrogate in any key or string: PostgreSQL refuses both, so
    the edge answers 400 (the document's introduction says so)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or not _encodes(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# What JSON Schema cannot say, the generator is taught (the document says it in words).
@schema.hook
def filter_body(context: Any, body: Any) -> bool:
    """Bodies the server takes for reasons the schema cannot carry (each a 422 otherwise)."""
    if not _storable(body):
        return False
    if not isinstance(body, dict):
        return True
    if _path(context).startswith("/sync-") and (body.get("tenant_id") is None) == (
        body.get("tenant_slug") is None
    ):
        return False  # a sync names its tenant by exactly one of tenant_id and tenant_slug
    return all(rule(body) for rule in _BODY_RULES)


def _dates_in_order(body: dict[str, Any]) -> bool:
    """An export's `end_date` is not before its `start_date`."""
    start, end = body.get("start_date"), body.get("end_date")
    return not (isinstance(start, str) and isinstance(end, str) and end < start)


def _lead_moments_in_range(body: dict[str, Any]) -> bool:
    """A remote lead's `criado` / `updated_at` within the local CHECK's range."""
    lead = body.get("lead")
    return not isinstance(lead, dict) or all(_in_range(lead.get(c)) for c in _MOMENTS)


def _mapping_fits(body: dict[str, Any]) -> bool:
    """No two fields to one remote column; only a mapping that fits the remote's columns
    can be saved (else 422 schema_invalid)."""
    mapping = body.get("field_mappings")
    if not isinstance(mapping, dict):
        return True
    names = list(map(str, mapping.values()))
    if len(names) != len(set(names)):
        return False
    return not body.get("save") or all(DEFAULT_MAPPING.get(k) == v for k, v in mapping.items())


def _payload_clean(body: dict[str, Any]) -> bool:
    """A job payload carries no credential, is at most 8 levels deep and holds only the
    provider's options."""
    payload, provider = body.get("payload"), PROVIDERS.get(str(body.get("provider_slug")))
    try:
        _no_secrets(payload)
        if isinstance(payload, dict) and provider is not None:
            _options(provider.options, payload)
    except ValueError:
        return False
    return True


def _schedule_parses(body: dict[str, Any]) -> bool:
    """A schedule's cron has five valid fields and its zone is an IANA zone."""
    try:
        if isinstance(body.get("cron"), str):
            parse_cron(body["cron"])
        if isinstance(body.get("timezone"), str):
            place_zone(body["timezone"])
    except ValueError:
        return False
    return True


def _alert_webhook_valid(body: dict[str, Any]) -> bool:
    """An alert webhook is an absolute https URL without credentials."""
    url = body.get("webhook_url")
    return not isinstance(url, str) or webhook_url_problem(url, allow_http=False) is None


_BODY_RULES = (
    _dates_in_order,
    _lead_moments_in_range,
    _mapping_fits,
    _payload_clean,
    _schedule_parses,
    _alert_webhook_valid,
)
_MOMENTS = ("criado", "updated_at")  # CHECKed between these instants (migration 0033)
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def _in_range(value: Any) -> bool:
    """A lead's `criado` / `updated_at` the local CHECK accepts (else 422)."""
    if not isinstance(value, str):
        return True
    try:
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return _EARLIEST <= moment < _LATEST
    except (ValueError, OverflowError):
        return True


@schema.hook
def filter_query(context: Any, query: Any) -> bool:
    """Storable values; integration-metrics' JSON form names its tenant (only the service's
    Prometheus form may leave it out). OpenAPI cannot make one query parameter required by
    another's value (the operation's description says it; else 422)."""
    if not _storable(query):
        return False
    if _path(context) == "/integration-metrics":
        query = query if isinstance(query, dict) else {}
        return query.get("format") == "prometheus" or query.get("tenant_id") is not None
    return True


def _path(context: Any) -> str:
    """The path of the operation a hook is drawing for."""
    return str(getattr(getattr(context, "operation", None), "path", ""))


def _aim(case: Case) -> None:
    """Point a well-formed request at the seeded tenant (a random one only meets 403s), and
    a new credits job at a priced workflow as the caller's own (prices are rows of the
    database, not of the document: any other workflow is 422 unknown_workflow)."""
    world = CALLER.world
    if (
        world is None
        or case.meta is None
        or case.meta.generation.mode is not GenerationMode.POSITIVE
    ):
        return
    if case.operation.path == "/runninghub-queue-manager/create" and isinstance(case.body, dict):
        case.body["workflowId"] = PRICED_WORKFLOW
        user = world.users[CALLER.role]
        if case.body.get("userId") is not None and user is not None:
            case.body["userId"] = str(user)
    tenant = str(world.tenant.id)
    for container in (case.body, case.query):
        if isinstance(container, dict):
            if container.get("tenant_id") is not None:
                container["tenant_id"] = tenant
            if container.get("tenant_slug") is not None:
                container["tenant_slug"] = SLUG
            if "tenant" in container:
                container["tenant"] = SLUG


@pytest.fixture(params=["member", "admin", "service"])
def caller(request: pytest.FixtureRequest, world: World, configure: Any) -> Any:
    configure(RUNNINGHUB_WEBHOOK_SECRET=RUNNINGHUB_WEBHOOK_SECRET)
    CALLER.world, CALLER.role = world, request.param
    yield CALLER
    CALLER.world = None


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=FIXED, suppress_health_check=[
          *_SLOW, HealthCheck.function_scoped_fixture])  # fmt: skip
def test_every_operation_keeps_its_contract(case: Case, caller: _Caller) -> None:
    _aim(case)
    case.call_and_validate()


class _Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Linked calls as a tenant admin: the links in the document chain them."""

    def setup(self) -> None:
        """Each scenario starts from no jobs, so Hypothesis can replay one faithfully."""
        if CALLER.world is not None:
            with psycopg.connect(CALLER.world.database_url) as conn:
                conn.execute(
                    "TRUNCATE integration_jobs, integration_logs, gestao_scouter_export_jobs"
                    " CASCADE"
                )

    def before_call(self, case: Case) -> None:
        _aim(case)
        if case.operation.path == "/run-integration" and isinstance(case.body, dict):
            # A random `retry_of` only meets 404 (no scenario holds a failed job): the chain
            # needs the 202 (the parametrized test above still sends it).
            case.body.pop("retry_of", None)

    def after_call(self, response: Any, case: Case) -> None:
        super().after_call(response, case)
        key = f"{case.operation.label} {response.status_code}"
        CALLER.sent[key] = CALLER.sent.get(key, 0) + 1


@pytest.mark.parametrize("role", ["admin"])
def test_linked_operations_keep_their_contract(role: str, world: World, configure: Any) -> None:
    configure(RUNNINGHUB_WEBHOOK_SECRET=RUNNINGHUB_WEBHOOK_SECRET)
    CALLER.world, CALLER.role, CALLER.sent = world, role, {}
    try:
        _Workflow.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=FIXED,  # in the bounded run, the chains below are surely reached
            )
        )
    finally:
        CALLER.world = None
    # The links were followed to the end: a queued job canceled, an export read or paused.
    assert CALLER.sent.get("POST /run-integration 202"), CALLER.sent
    assert CALLER.sent.get("POST /cancel-integration-job 200"), CALLER.sent
    assert CALLER.sent.get("POST /export-to-gestao-scouter-batch 200", 0) >= 2, CALLER.sent
