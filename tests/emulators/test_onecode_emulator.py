"""The OneCode emulator over real HTTP: paging envelope, errors, tenants and fault knobs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.onecode import OneCodeState, create_app

ROOT = Path(__file__).resolve().parents[2]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def state() -> OneCodeState:
    st = OneCodeState(seed=5)
    st.seed_token("tenant-a", 230)
    st.seed_token("tenant-b", 7)
    return st


@pytest.fixture
def server(state: OneCodeState) -> Iterator[ServerHandle]:
    with start_in_thread(create_app(state)) as handle:
        yield handle


@pytest.fixture
def client(server: ServerHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer tenant-a"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as c:
        yield c


def set_knobs(client: httpx.Client, **knobs: object) -> None:
    assert client.post("/__admin/knobs", json=knobs).status_code == 200


def page(client: httpx.Client, **params: str | int) -> dict[str, Any]:
    resp = client.get("/api/contacts", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_envelope_count_is_total_and_page_count_is_rows_here(client: httpx.Client) -> None:
    first = page(client, page=1, pageSize=20)
    assert {k: first[k] for k in ("count", "page", "pageSize", "pageCount")} == {
        "count": 230,
        "page": 1,
        "pageSize": 20,
        "pageCount": 20,
    }
    last = page(client, page=12, pageSize=20)
    assert (last["pageCount"], len(last["contacts"]), last["count"]) == (10, 10, 230)
    past = page(client, page=13, pageSize=20)
    assert (past["contacts"], past["pageCount"], past["count"]) == ([], 0, 230)


def test_defaults_are_page_1_and_20_rows(client: httpx.Client) -> None:
    body = page(client)
    assert (body["page"], body["pageSize"], body["pageCount"]) == (1, 20, 20)


def test_walking_all_pages_returns_every_contact_once(
    client: httpx.Client, state: OneCodeState
) -> None:
    seen: list[dict[str, Any]] = []
    for number in range(1, 10):
        seen += page(client, page=number, pageSize=50)["contacts"]
    assert seen == state.contacts("tenant-a")
    assert [c["id"] for c in seen] == sorted({c["id"] for c in seen})


def test_contact_shape(state: OneCodeState) -> None:
    contacts = state.contacts("tenant-a")
    for c in contacts:
        assert isinstance(c["id"], int) and isinstance(c["name"], str) and c["name"]
        assert c["number"].isdigit() and isinstance(c["email"], str)
        assert isinstance(c["isGroup"], bool) and isinstance(c["blocked"], bool)
        assert TIMESTAMP.match(c["createdAt"]) and TIMESTAMP.match(c["updatedAt"])
        assert c["updatedAt"] >= c["createdAt"]
        for tag in c["tags"]:
            assert isinstance(tag["id"], str) and tag["name"] and tag["color"].startswith("#")
    assert any(c["tags"] for c in contacts) and any(c["isGroup"] for c in contacts)
    assert any(c["email"] == "" for c in contacts) and any(c["email"] for c in contacts)


def test_page_size_above_100_is_clamped_and_reported(client: httpx.Client) -> None:
    body = page(client, page=1, pageSize=500)
    assert (body["pageSize"], body["pageCount"], body["count"]) == (100, 100, 230)


def test_page_size_reject_mode(client: httpx.Client) -> None:
    set_knobs(client, page_size_mode="reject")
    resp = client.get("/api/contacts", params={"pageSize": 101})
    assert (resp.status_code, resp.json()) == (400, {"error": "ERR_PAGE_SIZE"})
    assert page(client, pageSize=100)["pageCount"] == 100


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page": "x"}, {"pageSize": 0}, {"pageSize": "-5"}]
)
def test_bad_pagination_is_400(client: httpx.Client, params: dict[str, str | int]) -> None:
    resp = client.get("/api/contacts", params=params)
    assert (resp.status_code, resp.json()) == (400, {"error": "ERR_INVALID_PAGINATION"})


def test_show_contact_and_404(client: httpx.Client, state: OneCodeState) -> None:
    wanted = state.contacts("tenant-a")[100]
    assert client.get(f"/api/contacts/{wanted['id']}").json() == wanted
    for missing in ("999999999", "abc"):
        resp = client.get(f"/api/contacts/{missing}")
        assert (resp.status_code, resp.json()) == (404, {"error": "ERR_NO_CONTACT_FOUND"})


def test_tenants_are_told_apart_by_token(server: ServerHandle, state: OneCodeState) -> None:
    headers = {"Authorization": "Bearer tenant-b", "Host": "api-tenantb.onecode.chat"}
    body = httpx.get(f"{server.url}/api/contacts", headers=headers, timeout=5).json()
    assert body["count"] == 7 and body["contacts"] == state.contacts("tenant-b")
    other_tenant_id = state.contacts("tenant-a")[0]["id"]
    if other_tenant_id not in {c["id"] for c in body["contacts"]}:
        resp = httpx.get(f"{server.url}/api/contacts/{other_tenant_id}", headers=headers, timeout=5)
        assert resp.status_code == 404


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "ERR_SESSION_EXPIRED"),
        ("Bearer nope", "ERR_INVALID_TOKEN"),
        ("Basic x", "ERR_SESSION_EXPIRED"),
    ],
)
def test_bad_tokens_are_401(server: ServerHandle, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header else {}
    resp = httpx.get(f"{server.url}/api/contacts", headers=headers, timeout=5)
    assert (resp.status_code, resp.json()) == (401, {"error": code})


def test_mutate_contact_bumps_updated_at(client: httpx.Client, state: OneCodeState) -> None:
    state.clock = lambda: datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    target = state.contacts("tenant-a")[42]
    changed = state.mutate_contact("tenant-a", target["id"], name="Novo Nome")
    assert changed["updatedAt"] == "2030-01-02T03:04:05.678Z"
    served = client.get(f"/api/contacts/{target['id']}").json()
    assert (served["name"], served["updatedAt"]) == ("Novo Nome", "2030-01-02T03:04:05.678Z")
    assert served["createdAt"] == target["createdAt"]
    assert state.mutate_contact("tenant-a")["name"].endswith("(editado)")


def test_add_remove_and_replace(client: httpx.Client, state: OneCodeState) -> None:
    added = state.add_contact("tenant-a", name="Recém Chegado")
    assert page(client)["count"] == 231
    assert client.get(f"/api/contacts/{added['id']}").json()["name"] == "Recém Chegado"
    state.remove_contact("tenant-a", added["id"])
    assert page(client)["count"] == 230
    state.set_contacts("tenant-a", state.contacts("tenant-b")[:3])
    assert page(client)["count"] == 3


def test_seeded_data_is_reproducible() -> None:
    one, two = OneCodeState(seed=1), OneCodeState(seed=1)
    one.seed_token("t", 50)
    two.seed_token("t", 50)
    assert one.contacts("t") == two.contacts("t")


def test_fault_knobs(client: httpx.Client) -> None:
    set_knobs(client, rate_429=1.0)
    resp = client.get("/api/contacts")
    assert (resp.status_code, resp.json()) == (429, {"error": "ERR_TOO_MANY_REQUESTS"})
    set_knobs(client, rate_429=0.0, error_rate=1.0)
    statuses = {client.get("/api/contacts").status_code for _ in range(20)}
    assert statuses <= {500, 502, 503} and 500 in statuses
    set_knobs(client, error_rate=0.0, timeout_rate=1.0, hang_s=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/contacts", timeout=0.2)
    set_knobs(client, timeout_rate=0.0)
    stats = client.get("/__admin/stats").json()
    assert stats["by_status"]["429"] == 1 and stats["faults"]["timeout"] == 1


def test_rate_limit_knob(client: httpx.Client) -> None:
    set_knobs(client, rate_limit_per_min=3)
    assert [client.get("/api/contacts").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_cli_entry_point() -> None:
    cmd = [
        sys.executable, "-m", "infra.emulators.onecode", "--port", "0",
        "--seed-token", "a=30", "--seed-token", "b=2", "--rate-429", "0",
    ]  # fmt: skip
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            for token, count in (("a", 30), ("b", 2)):
                headers = {"Authorization": f"Bearer {token}"}
                body = httpx.get(f"{url}/api/contacts", headers=headers, timeout=5).json()
                assert body["count"] == count
        finally:
            proc.terminate()
            proc.wait(timeout=10)
