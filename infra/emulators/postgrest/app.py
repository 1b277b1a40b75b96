"""Flask app of the PostgREST emulator: `/rest/v1/...` plus admin endpoints."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from psycopg import sql

from infra.emulators import _common
from infra.emulators.postgrest import openapi, responses
from infra.emulators.postgrest.admin import admin_blueprint
from infra.emulators.postgrest.auth import Identity, authenticate
from infra.emulators.postgrest.db import fetch_one, transaction_as
from infra.emulators.postgrest.errors import EmulatorError, PostgrestError, table_not_found
from infra.emulators.postgrest.query import count_statement, parse_read, select_statement
from infra.emulators.postgrest.rejects import check_rejects
from infra.emulators.postgrest.schema_cache import Table
from infra.emulators.postgrest.state import PostgrestState
from infra.emulators.postgrest.writes import (
    InsertPlan,
    Prefer,
    delete_statement,
    insert_statement,
    plan_insert,
    update_statement,
)

JSON = responses.JSON


def _gateway_error(status: int, message: str) -> Response:
    """What the gateway answers for an injected 500 (the fault injector's shape)."""
    resp = jsonify({"message": "An unexpected error occurred"})
    resp.status_code = status
    return resp


def create_app(state: PostgrestState) -> Flask:
    """The emulator app; opens the state (database, schema cache, listener) if needed."""
    state.open()
    app = _common.make_app("postgrest", state, _gateway_error)
    app.register_blueprint(admin_blueprint(state))
    app.register_blueprint(_rest_blueprint(state))

    @app.errorhandler(EmulatorError)
    def _emulator_error(exc: EmulatorError) -> Response:
        return responses.json_response(exc.body, exc.status, exc.headers)

    @app.errorhandler(404)
    def _no_route(_: Exception) -> tuple[Response, int]:
        return jsonify({"message": "no Route matched with those values"}), 404

    @app.errorhandler(405)
    def _bad_method(_: Exception) -> tuple[Response, int]:
        error = PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        return responses.json_response(error.body, error.status), 405

    return app


def _identity(state: PostgrestState) -> Identity:
    apikey = request.headers.get("apikey") or request.args.get("apikey")
    authorization = request.headers.get("Authorization")
    return authenticate(apikey, authorization, state.jwt_secret, state.opaque_keys)


def _table(state: PostgrestState, name: str) -> Table:
    cache = state.schema()
    table = cache.table(name)
    if table is None:
        raise table_not_found(name, sorted(cache.tables))
    return table


def _check_content_type() -> None:
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json":
        message = f"Content-Type not acceptable: {mimetype}"
        raise PostgrestError(415, "PGRST107", message)


def _first_args() -> dict[str, str]:
    return {key: values[0] for key, values in request.args.lists() if values}


def _written(
    state: PostgrestState, status: int, body: str | None, headers: dict[str, str]
) -> Response:
    """A write's answer, unless the post-commit fault knob loses it."""
    if state.chance(state.knobs.post_commit_error_rate):
        state.record_fault("post_commit")
        return Response("<html><body>Bad Gateway</body></html>", 502, mimetype="text/html")
    if body is None:
        return responses.bare(status, headers)
    resp = Response(body, status, content_type=JSON)
    resp.headers.update(headers)
    return resp


def _rest_blueprint(state: PostgrestState) -> Blueprint:
    bp = Blueprint("rest", __name__, url_prefix="/rest/v1")

    @bp.get("/")
    def root() -> Response:
        identity = _identity(state)
        doc = openapi.document(state.schema(), identity.role, request.host)
        return Response(json.dumps(doc), 200, content_type=openapi.CONTENT_TYPE)

    @bp.get("/<name>")
    def read(name: str) -> Response:
        identity = _identity(state)
        table = _table(state, name)
        plan = parse_read(table, request.args.to_dict(flat=False))
        prefer = Prefer.parse(request.headers.getlist("Prefer"))
        with transaction_as(state, identity, "GET", request.path) as conn:
            row = fetch_one(conn, select_statement(table, plan), plan.params)
            total = None
            if prefer.count:
                total = int(fetch_one(conn, count_statement(table, plan), plan.params)["n"])
        return responses.read(row["body"], int(row["n"]), plan.offset, total, prefer)

    @bp.post("/<name>")
    def create(name: str) -> Response:
        limit = state.knobs.max_body_bytes
        if limit and (request.content_length or 0) > limit:
            state.record_fault("body_too_large")  # the proxy answers, PostgREST never sees it
            html = "<html><body><h1>413 Request Entity Too Large</h1></body></html>"
            return Response(html, 413, mimetype="text/html")
        identity = _identity(state)
        table = _table(state, name)
        _check_content_type()
        prefer = Prefer.parse(request.headers.getlist("Prefer"))
        need_rows = bool(state.knobs.reject_ids)
        plan = plan_insert(table, request.get_data(), _first_args(), prefer, need_rows=need_rows)
        check_rejects(state, table, plan)
        body, written, inserted = _run_insert(state, identity, table, plan, prefer)
        keyed = bool(table.primary_key) or "on_conflict" in request.args
        status, headers = responses.created(prefer, keyed, written, inserted)
        return _written(state, status, body, headers)

    @bp.patch("/<name>")
    def update(name: str) -> Response:
        identity = _identity(state)
        table = _table(state, name)
        _check_content_type()
        prefer = Prefer.parse(request.headers.getlist("Prefer"))
        args = request.args.to_dict(flat=False)
        stmt, params = update_statement(table, request.get_data(), args, prefer)
        return _run_simple_write(state, identity, stmt, params, prefer)

    @bp.delete("/<name>")
    def delete(name: str) -> Response:
        identity = _identity(state)
        table = _table(state, name)
        prefer = Prefer.parse(request.headers.getlist("Prefer"))
        stmt, params = delete_statement(table, request.args.to_dict(flat=False), prefer)
        return _run_simple_write(state, identity, stmt, params, prefer)

    @bp.post("/rpc/<name>")
    def rpc(name: str) -> Response:
        identity = _identity(state)
        return _call_function(state, identity, name)

    return bp


def _run_insert(
    state: PostgrestState, identity: Identity, table: Table, plan: InsertPlan, prefer: Prefer
) -> tuple[str | None, int, int]:
    """Every group of the batch in one transaction: the JSON body for return=representation,
    the rows written and how many of them were new."""
    rows: list[Any] = []
    written = inserted = 0
    with transaction_as(state, identity, "POST", request.path) as conn:
        for group in plan.groups:
            stmt = insert_statement(table, plan, group, prefer)
            row = fetch_one(conn, stmt, {"body": group.body})
            written += int(row["n"])
            inserted += int(row["inserted"])
            if row["body"] is not None:
                rows.extend(json.loads(row["body"]))
    state.count("insert_requests")
    state.count("rows_written", written)
    return (json.dumps(rows) if prefer.returning == "representation" else None), written, inserted


def _run_simple_write(
    state: PostgrestState, identity: Identity, stmt: Any, params: list[Any], prefer: Prefer
) -> Response:
    """PATCH / DELETE: 204, or 200 with the rows for return=representation."""
    with transaction_as(state, identity, request.method, request.path) as conn:
        cur = conn.execute(stmt, params)
        row = cur.fetchone() if prefer.returning == "representation" else None
        affected = int(row["n"]) if row is not None else max(cur.rowcount, 0)
    headers = responses.changed(request.method, prefer, affected)
    if row is not None:
        return _written(state, 200, row["body"], headers)
    return _written(state, 204, None, headers)


def _call_function(state: PostgrestState, identity: Identity, name: str) -> Response:
    """`POST /rpc/<name>` for functions without parameters."""
    fn = state.schema().functions.get(name)
    if fn is None or fn.nargs:
        message = (
            f"Could not find the function public.{name} without parameters in the schema cache"
        )
        raise PostgrestError(404, "PGRST202", message)
    template = "SELECT to_json({}())::text AS body"
    if fn.returns == "void":
        template = "SELECT {}() AS body"
    call = sql.SQL(template).format(sql.Identifier("public", name))
    with transaction_as(state, identity, "POST", request.path) as conn:
        row = conn.execute(call).fetchone()
    state.count(f"rpc_{name}")
    if fn.returns == "void":
        return responses.bare(204, {})
    return Response(row["body"] if row else "null", 200, mimetype=JSON)
