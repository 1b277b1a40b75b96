"""Schema validation, schema-cache reload, field mappings and the config check."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import flask
import psycopg
import pytest

from infra.emulators._common import start_in_thread
from infra.emulators.postgrest import make_key
from shared.gestao.mapping import LOCAL_FIELDS
from tests.integration.gestao_support import (
    PROVIDER,
    SLUG,
    Remote,
    drive,
    export,
    local_view,
    remote_view,
    secrets_env,
    seed_leads,
)
from tests.support import TenantFixture, call, rows, seed_tenant

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db


def validate(tenant: TenantFixture, **body: Any) -> Any:
    return call("validate-gestao-scouter-schema", {"tenant_id": str(tenant.id), **body},
                token=tenant.admin_token)  # fmt: skip


def reload(tenant: TenantFixture) -> Any:
    return call("reload-gestao-scouter-schema-cache", {"tenant_id": str(tenant.id)},
                token=tenant.admin_token)  # fmt: skip


def check(tenant: TenantFixture) -> dict[str, dict[str, Any]]:
    response = call("validate-gestao-scouter-config", {"tenant_id": str(tenant.id)},
                    token=tenant.admin_token)  # fmt: skip
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["checks"]}


def test_local_fields_allow_list_matches_the_migration(database_url: str) -> None:
    found = rows(
        database_url,
        "SELECT column_name AS c, format_type(atttypid, atttypmod) AS t"
        " FROM information_schema.columns JOIN pg_attribute"
        "   ON attrelid = 'leads'::regclass AND attname = column_name"
        " WHERE table_name = 'leads'",
    )
    types = {r["c"]: r["t"] for r in found}
    for field, pg_type in LOCAL_FIELDS.items():
        assert types[field].replace(", ", ",") == pg_type, field


def test_schema_drift_is_reported_then_fixed_by_sql_and_reload(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    configure(GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_RELOAD_WAIT_S="2",
              **secrets_env(own_remote.state.service_key))  # fmt: skip
    seed_leads(database_url, own_tenant.id, 300)
    job_id = export(own_tenant, "start").get_json()["id"]  # valid when the job starts
    own_remote.sql("ALTER TABLE public.leads DROP COLUMN telephone")
    own_remote.state.reload_schema()  # the remote never had it, as far as PostgREST knows

    job = drive(database_url, job_id)
    assert job["status"] == "paused" and "PGRST204" in job["pause_reason"]
    assert "telephone" in job["pause_reason"] and job["exported_leads"] == 0
    assert job["pause_code"] == "schema"

    report = validate(own_tenant).get_json()
    assert report["valid"] is False and report["missing_columns"] == ["telephone"]
    sql = report["suggested_sql"]
    assert 'ALTER TABLE public."leads" ADD COLUMN IF NOT EXISTS "telephone" text;' in sql
    assert export(own_tenant, "start").status_code == 409  # the paused job is still live

    own_remote.sql("\n".join(line for line in sql.splitlines() if not line.startswith("--")))
    assert export(own_tenant, "resume", job_id=job_id).status_code == 200
    job = drive(database_url, job_id)  # the column exists, the remote cache does not know it
    assert job["status"] == "paused" and "PGRST204" in job["pause_reason"]
    assert validate(own_tenant).get_json()["valid"] is False  # the remote still says so

    reloaded = reload(own_tenant).get_json()
    assert reloaded["reloaded"] is True and reloaded["validation"]["valid"] is True
    assert validate(own_tenant).get_json()["valid"] is True
    export(own_tenant, "resume", job_id=job_id)
    job = drive(database_url, job_id)
    assert job["status"] == "completed" and job["exported_leads"] == 300
    assert remote_view(own_remote) == local_view(database_url)


def test_start_refuses_an_invalid_schema_with_the_sql(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote
) -> None:
    own_remote.sql("ALTER TABLE public.leads ALTER COLUMN phone TYPE bigint USING NULL")
    own_remote.sql("ALTER TABLE public.leads ADD COLUMN region text NOT NULL")
    own_remote.state.reload_schema()
    response = export(own_tenant, "start")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "schema_invalid"
    details = error["details"]
    assert details["type_mismatches"] == [{"local_field": "celular", "remote_column": "phone",
                                          "local_type": "text", "remote_type": "bigint"}]  # fmt: skip
    assert details["unmapped_required"] == ["region"]
    assert 'ALTER COLUMN "phone" TYPE text USING "phone"::text;' in details["suggested_sql"]
    assert 'ALTER COLUMN "region" DROP NOT NULL;' in details["suggested_sql"]
    assert rows(database_url, "SELECT count(*) AS n FROM gestao_scouter_export_jobs")[0]["n"] == 0


def test_remote_columns_narrower_than_ours_are_mismatches(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote
) -> None:
    """A remote integer id refuses every lead above 2^31; a real latitude or value rounds
    them: the check names each (they passed as "numbers" and the export then failed or
    silently rounded). A wider remote type is fine."""
    own_remote.sql(
        "ALTER TABLE public.leads ALTER COLUMN id TYPE integer,"
        " ALTER COLUMN latitude TYPE real, ALTER COLUMN ficha_value TYPE real,"
        " ALTER COLUMN age TYPE bigint"
    )
    own_remote.state.reload_schema()
    response = export(own_tenant, "start")
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert {(m["local_field"], m["remote_type"]) for m in details["type_mismatches"]} == {
        ("id", "integer"), ("latitude", "real"), ("valor_ficha", "real"),
    }  # fmt: skip
    assert 'ALTER COLUMN "id" TYPE bigint USING "id"::bigint;' in details["suggested_sql"]


DEFAULTED_COLUMNS = (
    "ALTER TABLE public.leads ADD COLUMN region text NOT NULL DEFAULT 'SP',"
    " ADD COLUMN tags text[] NOT NULL DEFAULT '{}', ADD COLUMN score integer NOT NULL DEFAULT -1,"
    " ADD COLUMN row_no bigint GENERATED BY DEFAULT AS IDENTITY"
)


def test_schema_check_validates_a_remote_whose_not_null_columns_have_defaults(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote
) -> None:
    """PostgREST's `required` lists every NOT NULL column, defaults included (OpenAPI.hs
    `filter (not . colNullable)`): the remote's own created_at/updated_at/metadata and
    added columns the export leaves to Postgres (a text default, an array, -1, an
    identity) need no mapped value, so the remote is valid, no DROP NOT NULL is proposed,
    and the config check and the export both succeed."""
    own_remote.sql(DEFAULTED_COLUMNS)
    own_remote.state.reload_schema()
    report = validate(own_tenant).get_json()
    assert report["valid"] is True, report
    assert report["unmapped_required"] == [] and report["suggested_sql"] == ""
    # Defaults PostgREST's document cannot show ('{}'::jsonb, '{}'::text[], nextval, -1).
    assert report["unverified_defaults"] == ["metadata", "row_no", "score", "tags"]
    checks = check(own_tenant)
    assert all(c["ok"] for c in checks.values()), checks

    seed_leads(database_url, own_tenant.id, 30)
    job = drive(database_url, export(own_tenant, "start").get_json()["id"])
    assert job["status"] == "completed" and job["exported_leads"] == 30
    filled = own_remote.sql("SELECT DISTINCT region, tags, score FROM public.leads")
    assert filled == [("SP", [], -1)]


def test_not_null_columns_without_defaults_are_caught_one_by_one(
    own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """Only a column the export would leave NULL is reported: a text column without a
    default blocks, with DROP NOT NULL for it alone; an array column without one cannot be
    told from the document (no `default` either way), so the config check's probe row,
    which leaves it out as the export does, names it."""
    configure(GESTAO_SCOUTER_SCHEMA_CACHE_S="0")  # every validation reads the remote
    own_remote.sql(DEFAULTED_COLUMNS)
    own_remote.sql("ALTER TABLE public.leads ALTER COLUMN tags DROP DEFAULT")
    own_remote.state.reload_schema()
    report = validate(own_tenant).get_json()
    assert report["valid"] is True and "tags" in report["unverified_defaults"]
    writable = check(own_tenant)["leads_writable"]
    assert not writable["ok"] and "23502" in writable["detail"]
    assert '"tags"' in writable["detail"] and "give it a default" in writable["detail"]

    own_remote.sql("ALTER TABLE public.leads ALTER COLUMN region DROP DEFAULT")
    own_remote.state.reload_schema()
    report = validate(own_tenant).get_json()
    assert report["valid"] is False and report["unmapped_required"] == ["region"]
    drops = [line for line in report["suggested_sql"].splitlines() if "NOT NULL" in line]
    assert drops == ['ALTER TABLE public."leads" ALTER COLUMN "region" DROP NOT NULL;']


def test_missing_remote_table_suggests_creating_it(
    own_tenant: TenantFixture, own_remote: Remote
) -> None:
    own_remote.sql("ALTER TABLE public.leads RENAME TO leads_old")
    own_remote.state.reload_schema()
    report = validate(own_tenant).get_json()
    assert report["valid"] is False and report["table_present"] is False
    assert report["suggested_sql"].startswith('CREATE TABLE public."leads" (')


def test_validation_is_cached_and_the_cache_is_dropped_on_reload(
    own_tenant: TenantFixture, own_remote: Remote
) -> None:
    def openapi_reads() -> int:
        return int(own_remote.state.stats()["by_path"].get("/rest/v1/", 0))

    assert validate(own_tenant).get_json()["valid"] is True
    reads = openapi_reads()
    assert validate(own_tenant).get_json()["valid"] is True
    assert openapi_reads() == reads  # served from the cache
    own_remote.sql("ALTER TABLE public.leads ADD COLUMN instagram text")
    assert reload(own_tenant).status_code == 200
    after = openapi_reads()
    assert after > reads
    validate(own_tenant)
    assert openapi_reads() == after  # the reload refreshed the cache


def test_field_mappings_are_validated_against_both_schemas_and_stored(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote
) -> None:
    mapping = {"id": "id", "name": "name", "celular": "mobile"}
    report = validate(own_tenant, field_mappings=mapping).get_json()
    assert report["valid"] is False and report["missing_columns"] == ["mobile"]
    refused = validate(own_tenant, field_mappings=mapping, save=True)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "schema_invalid"
    bad_local = validate(own_tenant, field_mappings={"id": "id", "cpf": "cpf"})
    assert bad_local.status_code == 422
    assert bad_local.get_json()["error"]["details"][0]["loc"] == ["field_mappings", "cpf"]
    dup = validate(own_tenant, field_mappings={"id": "id", "name": "phone", "celular": "phone"})
    assert dup.status_code == 422
    no_id = validate(own_tenant, field_mappings={"name": "name"})
    assert no_id.status_code == 422

    good = {"id": "id", "name": "name", "celular": "telephone", "criado": "criado"}
    saved = validate(own_tenant, field_mappings=good, save=True).get_json()
    assert saved["valid"] is True and saved["saved"] is True
    stored = rows(
        database_url, "SELECT local_field, remote_field FROM gestao_scouter_field_mappings"
    )
    assert {r["local_field"]: r["remote_field"] for r in stored} == good
    assert validate(own_tenant).get_json()["field_mappings"] == good
    seed_leads(database_url, own_tenant.id, 20)
    job = drive(database_url, export(own_tenant, "start").get_json()["id"])
    assert job["status"] == "completed"
    got = own_remote.sql("SELECT id, name, telephone, phone FROM public.leads ORDER BY id")
    want = rows(database_url, "SELECT id, name, celular FROM leads ORDER BY id")
    assert got == [(r["id"], r["name"], r["celular"], None) for r in want]


def test_config_check_names_what_is_wrong(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    good = check(tenant)
    assert all(c["ok"] for c in good.values()), good
    assert list(good) == ["url_well_formed", "host_reachable", "key_accepted", "service_role",
                          "leads_readable", "leads_writable"]  # fmt: skip
    assert remote.sql("SELECT count(*) FROM public.leads") == [(0,)]  # the probe is gone

    configure(**secrets_env(make_key("another-project-secret-0123456789abcd", "service_role", "x")))
    wrong_key = check(tenant)
    assert wrong_key["host_reachable"]["ok"] and not wrong_key["key_accepted"]["ok"]
    assert "Invalid API key" in wrong_key["key_accepted"]["detail"]

    configure(**secrets_env(remote.state.anon_key))
    anon = check(tenant)
    assert anon["key_accepted"]["ok"] and anon["leads_readable"]["ok"]
    assert not anon["service_role"]["ok"] and "anon" in anon["service_role"]["detail"]
    assert "401" in anon["service_role"]["detail"] and not anon["leads_writable"]["ok"]

    configure(**secrets_env(remote.state.service_key))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            'UPDATE tenant_integrations SET config = \'{"project_url": "http://127.0.0.1:9"}\''
        )
    wrong_url = check(tenant)
    assert wrong_url["url_well_formed"]["ok"] and not wrong_url["host_reachable"]["ok"]
    assert wrong_url["key_accepted"]["detail"].startswith("Not checked")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            'UPDATE tenant_integrations SET config = \'{"project_url": "http://gs.example.com"}\''
        )
    assert not check(tenant)["url_well_formed"]["ok"]
    everything = str(wrong_key) + str(anon) + str(wrong_url)
    assert remote.state.service_key not in everything and remote.state.anon_key not in everything


def test_a_probe_row_the_config_check_could_not_delete_is_named(
    tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """Its DELETE answered 503: the check said 'Not checked' and left the probe row on the
    remote unnamed (a 403 was named; a 5xx or no answer was not)."""
    remote.sql(
        "CREATE FUNCTION public.no_delete() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'connection lost' USING ERRCODE = '08006'; END $$;"
        " CREATE TRIGGER no_delete BEFORE DELETE ON public.leads"
        " FOR EACH ROW EXECUTE FUNCTION public.no_delete();"
    )
    try:
        checks = check(tenant)
        [(left,)] = remote.sql("SELECT id FROM public.leads")
    finally:
        remote.sql("DROP TRIGGER no_delete ON public.leads; DROP FUNCTION public.no_delete()")
    writable = checks["leads_writable"]
    assert not writable["ok"] and f"id={left}" in writable["detail"], writable
    assert "HTTP 503" in writable["detail"]


def test_a_probe_write_still_running_when_its_answer_timed_out_is_named(
    own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """No answer: the DELETE sent at once found nothing (the insert was still running) and
    the row it then committed was left unnamed (found by the diff review of 6c40158)."""
    own_remote.sql(
        "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$;"
        " CREATE TRIGGER slow BEFORE INSERT ON public.leads"
        " FOR EACH ROW EXECUTE FUNCTION public.slow();"
    )
    configure(GESTAO_SCOUTER_TIMEOUT_S="1")
    checks = check(own_tenant)
    time.sleep(2.5)  # the insert commits
    [(left,)] = own_remote.sql("SELECT id FROM public.leads")
    writable = checks["leads_writable"]
    assert not writable["ok"] and f"id={left}" in writable["detail"], writable


def _schema_document(leads: dict[str, Any]) -> bytes:
    return json.dumps({"swagger": "2.0", "definitions": {"leads": leads}}).encode()


@pytest.mark.parametrize(
    "document",
    [
        _schema_document({"properties": ["id", "name"]}),  # a list where an object belongs
        _schema_document({"required": 5, "properties": {"id": {"format": "bigint"}}}),
        _schema_document({"required": [{"id": True}], "properties": {"id": {"format": "bigint"}}}),
        _schema_document({"properties": {"id": {"type": ["integer", "null"]}}}),  # OpenAPI 3.1
        b"[" * 200_000,  # nested past the JSON parser's depth: RecursionError
    ],
    ids=["properties-a-list", "required-a-number", "required-objects", "type-a-list", "deep"],
)
def test_a_remote_answering_a_malformed_schema_document_is_not_a_500(
    database_url: str, configure: Any, document: bytes
) -> None:
    """The remote's answers are input: a `required` that is not a list of names,
    `properties` that is not an object, a `type` list, or JSON nested too deep made every
    validate-* function answer 500 (TypeError / AttributeError in columns_from_openapi,
    RecursionError in Answer.of). Each now reads such a document as one without columns."""
    garbage = flask.Flask("garbage-remote")

    @garbage.route("/", defaults={"path": ""}, methods=["GET", "POST", "DELETE"])
    @garbage.route("/<path:path>", methods=["GET", "POST", "DELETE"])
    def answer(path: str) -> flask.Response:
        return flask.Response(document, 200, content_type="application/json")

    with start_in_thread(garbage) as handle:
        configure(**secrets_env("remote-key-0123456789abcdef"), GESTAO_SCOUTER_RELOAD_WAIT_S="0")
        tenant = seed_tenant(database_url, SLUG, providers={PROVIDER: {"project_url": handle.url}})
        for function in ("validate-gestao-scouter-schema", "validate-gestao-scouter-config",
                         "reload-gestao-scouter-schema-cache"):  # fmt: skip
            response = call(function, {"tenant_id": str(tenant.id)}, token=tenant.admin_token)
            assert response.status_code == 200, (function, response.get_json())
        report = validate(tenant).get_json()
        assert report["valid"] is False and "name" in report["missing_columns"]


def test_concurrent_saves_of_the_field_mapping_both_succeed(
    database_url: str, tenant: TenantFixture, remote: Remote
) -> None:
    """Two admins save a mapping at once: the second save's DELETE ran on a snapshot
    without the rows the first one inserted, so its INSERT met them (a unique violation,
    answered 500). Saves of one tenant's mapping now take turns: the last one wins whole."""
    assert (
        validate(tenant, field_mappings={"id": "id", "name": "name"}, save=True).status_code == 200
    )
    mappings = [{"id": "id", "name": "name", "email": "email"},
                {"id": "id", "name": "name", "celular": "phone"}]  # fmt: skip
    answers: dict[int, Any] = {}

    def save(i: int) -> None:
        answers[i] = validate(tenant, field_mappings=mappings[i], save=True)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    with psycopg.connect(database_url) as blocker:  # both saves wait at the stored rows
        blocker.execute("SELECT * FROM gestao_scouter_field_mappings FOR UPDATE")
        for thread in threads:
            thread.start()
        time.sleep(1.5)
    for thread in threads:
        thread.join(30)
    assert [answers[i].status_code for i in range(2)] == [200, 200], [
        answers[i].get_json() for i in range(2)]  # fmt: skip
    stored = rows(
        database_url, "SELECT local_field, remote_field FROM gestao_scouter_field_mappings"
    )
    assert {r["local_field"]: r["remote_field"] for r in stored} in mappings
