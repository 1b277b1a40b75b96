"""Pure parts of the Gestão Scouter export: scrubbing, mappings, schema comparison, batches."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.backoff import backoff_delay
from shared.errors import ValidationFailed
from shared.gestao import runner
from shared.gestao.batches import batch_statement, date_bounds, remote_columns
from shared.gestao.config_check import check_url
from shared.gestao.mapping import DEFAULT_MAPPING, LOCAL_FIELDS, mapping_problems, reverse
from shared.gestao.models import ExportRequest, ReverseSyncRequest
from shared.gestao.remote import RemoteAnswer, RemoteClient, Reply, Target
from shared.gestao.schema import columns_from_openapi, compare, fits, kind_of
from shared.scrub import scrub_text, scrub_value
from shared.settings import Settings


def test_scrub_removes_quoted_data_tokens_and_contacts() -> None:
    cases = {
        "Failing row contains (7, Ana Souza, 33, ana@x.com, 11999998888).": "Failing row contains ([redacted]).",
        "Key (external_id)=(CPF 123.456.789-00) already exists.": "Key (external_id)=([redacted]) already exists.",
        'invalid input syntax for type integer: "vinte e dois"': 'invalid input syntax for type integer: "[redacted]"',
        "apikey eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.sig": "apikey [redacted]",
        "write to joao.silva@example.com or +55 (11) 98888-7777": "write to [redacted] or [redacted]",
        "bad key sb_secret_abcdef123456": "bad key [redacted]",
    }
    for raw, clean in cases.items():
        assert scrub_text(raw) == clean
    assert scrub_text("token s3cr3t-value in text", ["s3cr3t-value"]) == "token [redacted] in text"
    body = {"code": "23505", "details": "Key (email)=(a@b.co) already exists.", "n": 1}
    assert scrub_value(body) == {
        "code": "23505",
        "details": "Key (email)=([redacted]) already exists.",
        "n": 1,
    }
    assert scrub_text('column "phone" of relation "leads" does not exist') == (
        'column "phone" of relation "leads" does not exist'
    )


def test_mapping_rules() -> None:
    assert mapping_problems(DEFAULT_MAPPING) == []
    assert set(DEFAULT_MAPPING) <= set(LOCAL_FIELDS)
    assert DEFAULT_MAPPING["celular"] == "phone" and DEFAULT_MAPPING["responsavel"] == "responsible"
    problems = mapping_problems({"name": "Name!", "cpf": "cpf", "email": "sync_source"})
    locs = [p["loc"][-1] for p in problems]
    assert locs == ["name", "cpf", "email", "id"]
    # The whole name: `$` alone would also match before a final newline.
    assert [p["loc"] for p in mapping_problems({"id": "id\n"})] == [["field_mappings", "id"]]
    # PostgreSQL's identifiers stop at 63 bytes: the message says so, not only the alphabet.
    [long] = mapping_problems({"id": "x" * 64})
    assert long["message"] == "remote name must be 1-63 of a-z, 0-9, _ (not a digit first)"
    assert reverse({"id": "id", "celular": "phone"}) == {"id": "id", "phone": "celular"}


def test_kinds_and_openapi_columns() -> None:
    assert kind_of("numeric(12,2)") == "number" and kind_of("character varying(80)") == "text"
    assert kind_of("timestamp with time zone") == "timestamp" and kind_of("text[]") == "array"
    # PostgREST lists every NOT NULL column as required and shows a default only when it
    # reads as JSON: always for string and boolean columns, never for `'{}'::jsonb`.
    doc = {"definitions": {"leads": {"required": ["id", "meta", "at", "region"], "properties": {
        "id": {"type": "integer", "format": "bigint"}, "meta": {"format": "jsonb"},
        "at": {"default": "now()", "type": "string", "format": "timestamp with time zone"},
        "region": {"type": "string", "format": "text"}}}}}  # fmt: skip
    assert columns_from_openapi(doc) == {
        "id": {"format": "bigint", "required": True, "has_default": None},
        "meta": {"format": "jsonb", "required": True, "has_default": None},
        "at": {"format": "timestamp with time zone", "required": True, "has_default": True},
        "region": {"format": "text", "required": True, "has_default": False},
    }
    assert columns_from_openapi({"definitions": {}}) is None


def test_compare_reports_missing_mismatched_and_required() -> None:
    mapping = {"id": "id", "name": "name", "celular": "phone", "age": "age", "criado": "criado"}
    columns = {
        "id": {"format": "bigint", "required": True},
        "name": {"format": "character varying(200)", "required": True},
        "phone": {"format": "bigint", "required": False},
        "age": {"format": "numeric", "required": False},
        "region": {"format": "text", "required": True},
        "sync_source": {"format": "text", "required": False},
    }
    report = compare(mapping, columns)
    assert not report.valid
    assert report.missing_columns == ["criado"]
    assert [m["remote_column"] for m in report.type_mismatches] == ["phone"]
    assert report.unmapped_required == ["region"]
    assert report.suggested_sql.splitlines() == [
        'ALTER TABLE public."leads" ALTER COLUMN "phone" TYPE text USING "phone"::text;',
        'ALTER TABLE public."leads" ADD COLUMN IF NOT EXISTS "criado" timestamptz;',
        'ALTER TABLE public."leads" ALTER COLUMN "region" DROP NOT NULL;',
        "-- then reload the schema cache (reload-gestao-scouter-schema-cache)",
    ]
    fine = {**columns, "phone": {"format": "text", "required": False},
            "criado": {"format": "timestamp with time zone", "required": False}}  # fmt: skip
    fine.pop("region")
    assert compare(mapping, fine).valid


def test_compare_leaves_not_null_columns_with_defaults_alone() -> None:
    """A NOT NULL column the mapping leaves out needs nothing when it has a default; one
    whose default the document cannot show is reported, not blocked; no DROP NOT NULL."""
    mapping = {"id": "id", "name": "name"}
    columns = {
        "id": {"format": "bigint", "required": True, "has_default": None},
        "name": {"format": "text", "required": True, "has_default": False},
        "created_at": {"format": "timestamp with time zone", "required": True, "has_default": True},
        "metadata": {"format": "jsonb", "required": True, "has_default": None},
        "sync_source": {"format": "text", "required": False, "has_default": True},
    }
    report = compare(mapping, columns)
    assert report.valid and report.suggested_sql == ""
    assert report.unmapped_required == [] and report.unverified_defaults == ["metadata"]
    columns["region"] = {"format": "text", "required": True, "has_default": False}
    report = compare(mapping, columns)
    assert not report.valid and report.unmapped_required == ["region"]
    assert [line for line in report.suggested_sql.splitlines() if "DROP" in line] == [
        'ALTER TABLE public."leads" ALTER COLUMN "region" DROP NOT NULL;'
    ]


def test_answers_are_classified() -> None:
    def answer(status: int, code: str | None = None) -> RemoteAnswer:
        return RemoteAnswer(status, {"code": code, "message": "m"} if code else None, "")

    assert answer(201).reply is Reply.OK
    assert answer(400, "23502").reply is Reply.DATA
    assert answer(400, "22P02").reply is Reply.DATA
    assert answer(409, "23505").reply is Reply.DATA
    assert answer(413).reply is Reply.DATA
    assert answer(400, "PGRST204").reply is Reply.SCHEMA
    assert answer(404, "PGRST205").reply is Reply.SCHEMA
    assert answer(401, "42501").reply is Reply.AUTH
    assert answer(403, "42501").reply is Reply.AUTH
    assert answer(400, "PGRST102").reply is Reply.OTHER
    # A trigger's own refusal with the status it chose (PTxxx, RAISE SQLSTATE 'PGRST'):
    assert answer(400, "PT400").reply is Reply.DATA
    assert answer(422, "PT422").reply is Reply.DATA
    assert answer(422, "L001").reply is Reply.DATA
    # ... but not the statement (undefined function, a rule the upsert cannot go through),
    # a read-only remote, PostgREST's own codes, a bare 4xx:
    assert answer(400, "42883").reply is Reply.OTHER
    assert answer(400, "0A000").reply is Reply.OTHER
    for row_level in ("2F005", "27000", "44000"):  # a trigger's routine, WITH CHECK OPTION
        assert answer(400, row_level).reply is Reply.DATA
    assert answer(405, "25006").reply is Reply.OTHER
    assert answer(400, "PGRST100").reply is Reply.OTHER
    assert answer(400).reply is Reply.OTHER
    assert answer(422).reply is Reply.OTHER
    assert RemoteAnswer(400, {"message": "Bad Request"}, "").reply is Reply.OTHER  # no code at all


def test_answers_without_a_code_are_classified_by_their_status() -> None:
    # A 404 from a wrong path or a proxy (no PostgREST code): the table is not there.
    assert RemoteAnswer(404, {"message": "Not Found"}, "").reply is Reply.SCHEMA
    # A 409 without a code (a conflict the remote answered in its own words): a row's.
    assert RemoteAnswer(409, {"message": "Conflict"}, "").reply is Reply.DATA
    # A code sent as JSON null is no code (not the text "None", read as the remote's own).
    nulled = RemoteAnswer(400, {"code": None, "message": "Bad Request"}, "")
    assert nulled.code is None and nulled.reply is Reply.OTHER
    # A code of the remote's own choosing refuses rows only with a 4xx.
    assert RemoteAnswer(500, {"code": "PT500", "message": "m"}, "").reply is Reply.OTHER
    assert RemoteAnswer(500, {"code": "L001", "message": "m"}, "").reply is Reply.OTHER


def test_the_remote_is_asked_which_leads_it_holds_a_few_hundred_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = RemoteClient(Target("http://127.0.0.1:9", "key"), Settings())
    asked: list[int] = []

    def send(method: str, path: str, *, params: dict[str, str], **_: Any) -> RemoteAnswer:
        ids = params["id"].removeprefix("in.(").removesuffix(")").split(",")
        asked.append(len(ids))
        assert params["select"] == "id,name"
        return RemoteAnswer(200, [{"id": int(i), "name": i} for i in ids if int(i) % 7], "")

    monkeypatch.setattr(client, "send", send)
    held = client.held("id", list(range(1, 702)), ["id", "name"])
    assert set(held) == {i for i in range(1, 702) if i % 7} and asked == [300, 300, 101]
    assert held[8] == {"id": 8, "name": "8"}


def test_a_lead_the_remote_holds_as_sent_is_told_from_another_copy() -> None:
    """What decides whether a lead whose update the remote did not count was exported."""
    sent = {"id": 7, "name": "Ana", "ficha_value": 12.5, "criado": "2024-01-01T10:00:00+00:00"}
    same = {**sent, "ficha_value": 12.50, "criado": "2024-01-01T07:00:00-03:00", "x": 1}
    assert runner._same_copy(sent, same)
    assert runner._same_copy(sent, {**sent, "criado": "2024-01-01T10:00:00"})  # naive: UTC
    assert not runner._same_copy(sent, {**sent, "name": "Ana (theirs)"})
    assert not runner._same_copy(sent, {**sent, "criado": "2024-01-01T10:00:01+00:00"})
    assert not runner._same_copy(sent, {k: v for k, v in sent.items() if k != "name"})
    assert not runner._same_copy({**sent, "name": "2024-01-01"}, {**sent, "name": "x"})


def test_a_lead_held_as_sent_is_told_by_every_column_type() -> None:
    """Columns of every JSON type: null, booleans, arrays and objects by value, a timestamp
    the remote holds as null (a trigger clearing it) or as no timestamp, a number held as
    text: another copy, never a crash."""
    sent = {"id": 7, "ok": True, "tags": ["a", "b"], "extra": {"k": 1, "v": [1.5]},
            "phone": None, "criado": "2024-01-01T10:00:00+00:00", "age": 30}  # fmt: skip
    assert runner._same_copy(sent, {**sent, "extra": {"v": [1.50], "k": 1.0}})
    assert not runner._same_copy(sent, {**sent, "ok": False})
    assert not runner._same_copy(sent, {**sent, "tags": ["b", "a"]})
    assert not runner._same_copy(sent, {**sent, "extra": {"k": 1}})
    assert not runner._same_copy(sent, {**sent, "phone": ""})
    assert not runner._same_copy(sent, {**sent, "criado": None})
    assert not runner._same_copy(sent, {**sent, "criado": 1704103200})
    assert not runner._same_copy(sent, {**sent, "age": "30"})
    assert not runner._same_copy({**sent, "phone": "2024-01-01"}, {**sent, "phone": None})


def test_a_resend_asks_the_remote_which_rows_it_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the resend of leads held in another copy asks for the keys of the rows written
    (return=representation, select=the key); every batch asks only their count."""
    client = RemoteClient(Target("http://127.0.0.1:9", "key"), Settings())
    asked: list[tuple[dict[str, str], str | None]] = []

    def send(method: str, path: str, *, params: dict[str, str], prefer: str | None = None,
             **_: Any) -> RemoteAnswer:  # fmt: skip
        asked.append((params, prefer))
        return RemoteAnswer(201, None, "")

    monkeypatch.setattr(client, "send", send)
    client.upsert(b"[]", ["id", "name"], "id")
    client.upsert(b"[]", ["id", "name"], "id", written=True)
    base = {"on_conflict": "id", "columns": "id,name"}
    assert asked == [
        (base, "resolution=merge-duplicates, return=minimal, count=exact"),
        ({**base, "select": "id"}, "resolution=merge-duplicates, return=representation,"
         " count=exact"),
    ]  # fmt: skip


def test_batches_and_requests() -> None:
    low, high = date_bounds(date(2024, 1, 1), date(2024, 1, 31))
    assert low == datetime(2024, 1, 1, tzinfo=UTC) and high == datetime(2024, 2, 1, tzinfo=UTC)
    assert date_bounds(None, None) == (None, None)
    assert remote_columns({"id": "id", "celular": "phone"}) == ["id", "phone", "sync_source"]
    with pytest.raises(ValidationFailed):
        batch_statement({"id": "id", "drop table": "x"})
    with pytest.raises(ValueError, match="before"):
        ExportRequest.model_validate(
            {
                "tenant_id": "11111111-1111-4111-8111-111111111111",
                "action": "start",
                "start_date": "2024-02-01",
                "end_date": "2024-01-01",
            }
        )
    # The key column is the tenant's mapping's (the function answers 422 when it is missing).
    ReverseSyncRequest.model_validate({"lead": {"tabulador_id": 7}, "source": "gestao_scouter"})


@pytest.mark.parametrize(
    ("url", "ok", "detail"),
    [
        ("https://abc.supabase.co", True, "https://abc.supabase.co looks right."),
        ("http://127.0.0.1:8105", True, "http://127.0.0.1:8105 looks right."),
        ("http://abc.supabase.co", False, "must use https"),
        ("https://abc.supabase.co:99999", False, "invalid port"),
        ("https://abc.supabase.co:port", False, "invalid port"),
        ("ftp://abc.supabase.co", False, "must look like"),
        ("https://abc.supabase.co/?x=1", False, "query or fragment"),
    ],
)
def test_check_url(url: str, ok: bool, detail: str) -> None:
    got_ok, got_detail = check_url(url)
    assert got_ok is ok and detail in got_detail


def test_failure_backoff_doubles_and_is_capped() -> None:
    # The export backs off with the engine's one policy, from its own base and cap.
    settings = Settings(gestao_scouter_failure_backoff_s=30)
    base, cap = (
        settings.gestao.failure_backoff_s,
        settings.gestao.failure_backoff_cap_s,
    )
    delays = [backoff_delay(n, base_s=base, cap_s=cap, rand=1.0) for n in (0, 1, 2, 3, 6, 50)]
    assert delays == [30.0, 30.0, 60.0, 120.0, 600.0, 600.0]
    lowest = [backoff_delay(n, base_s=base, cap_s=cap, rand=0.0) for n in (1, 2, 6)]
    assert lowest == [15.0, 30.0, 300.0]  # equal jitter: never below half


def test_the_batch_size_grows_while_fast_stays_under_the_byte_budget_and_halves_when_too_big() -> (
    None
):
    from shared.gestao.batches import BatchSizer

    sizer = BatchSizer(size=500, max_rows=5000, max_bytes=1_000_000, fast_s=2.0)
    sizer.answered(500, 500 * 400, 0.1)  # full and fast: doubles
    assert sizer.size == 1000
    sizer.answered(999, 999 * 400, 0.1)  # a short (last) page says nothing
    assert sizer.size == 1000
    sizer.answered(1000, 1000 * 400, 5.0)  # slow: holds
    assert sizer.size == 1000
    sizer.answered(1000, 1000 * 400, 0.1)  # 2000 rows of 400 bytes would pass 1 MB: 2500 fits
    assert sizer.size == 2000
    sizer.answered(2000, 2000 * 400, 0.1)
    assert sizer.size == 2500  # the byte budget, not the doubling, decides
    sizer.answered(2500, 2500 * 2000, 0.1)  # wide rows: 500 fit
    assert sizer.size == 500
    sizer.too_big(500, 500 * 2000)  # refused for its size: never that many bytes again
    assert sizer.size == 250 and sizer.max_bytes == 500 * 2000 - 1
    sizer.answered(250, 250 * 2000, 0.1)
    assert sizer.size == 499  # grows back, but under the body that was refused
    for _ in range(20):
        sizer.too_big(sizer.size)
    assert sizer.size == 1  # never below one lead
    capped = BatchSizer(size=4000, max_rows=5000, max_bytes=10**9, fast_s=2.0)
    capped.answered(4000, 4000, 0.1)
    assert capped.size == 5000
    timed_out = BatchSizer(size=400, max_rows=5000, max_bytes=10**9, fast_s=2.0)
    timed_out.too_big(400)  # no body size (a timeout): never that many rows again
    assert (timed_out.size, timed_out.max_rows) == (200, 399)
    timed_out.answered(200, 200 * 100, 0.1)
    assert timed_out.size == 399


@pytest.mark.parametrize(
    ("local", "remote", "ok"),
    [("bigint", "integer", False), ("bigint", "bigint", True), ("bigint", "numeric", True),
     ("bigint", "double precision", False), ("integer", "bigint", True),
     ("integer", "smallint", False), ("double precision", "real", False),
     ("double precision", "numeric", True), ("numeric(12,2)", "real", False),
     ("numeric(12,2)", "double precision", True), ("numeric(12,2)", "integer", False),
     ("text", "character varying", True), ("integer", "text", True),
     ("date", "timestamp with time zone", True), ("text", "integer", False)],
)  # fmt: skip
def test_a_remote_type_fits_when_every_local_value_arrives_unchanged(
    local: str, remote: str, ok: bool
) -> None:
    assert fits(local, remote) is ok
