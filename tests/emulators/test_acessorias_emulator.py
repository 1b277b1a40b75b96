"""The Acessórias emulator over real HTTP: protocol quirks, knobs and the shared toolkit."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.acessorias import AcessoriasKnobs, AcessoriasState, create_app

ROOT = Path(__file__).resolve().parents[2]
CNPJ = re.compile(r"^\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}$")
CPF = re.compile(r"^\d{3}\.\d{3}\.\d{3}-\d{2}$")
BR_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture
def state() -> AcessoriasState:
    st = AcessoriasState(seed=3)
    st.seed_token("tok-a", 45)
    st.seed_token("tok-b", 5)
    return st


@pytest.fixture
def server(state: AcessoriasState) -> Iterator[ServerHandle]:
    with start_in_thread(create_app(state)) as handle:
        yield handle


@pytest.fixture
def client(server: ServerHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer tok-a"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as c:
        yield c


def set_knobs(client: httpx.Client, **knobs: object) -> None:
    resp = client.post("/__admin/knobs", json=knobs)
    assert resp.status_code == 200, resp.text


def companies_page(client: httpx.Client, page: int, **params: str) -> list[dict[str, Any]]:
    resp = client.get("/companies/ListAll", params={"Pagina": page, **params})
    assert resp.status_code == 200
    body = resp.json()
    assert isinstance(body, list)
    return body


# -- protocol ---------------------------------------------------------------------------------


def test_pages_of_20_end_with_an_empty_page(client: httpx.Client, state: AcessoriasState) -> None:
    sizes = [len(companies_page(client, p)) for p in (1, 2, 3, 4, 5)]
    assert sizes == [20, 20, 5, 0, 0]
    seen = [c["ID"] for p in (1, 2, 3) for c in companies_page(client, p)]
    assert seen == [c["ID"] for c in state.companies("tok-a")]
    assert seen == sorted(seen, key=int)


def test_company_values_are_realistic_strings(state: AcessoriasState) -> None:
    rows = state.companies("tok-a") + state.companies("tok-b")
    for c in rows:
        scalars = {k: v for k, v in c.items() if k not in {"ContatosNaEmpresa", "Departamentos"}}
        assert all(isinstance(v, str) for v in scalars.values()), c
        assert CNPJ.match(c["Identificador"]) or CPF.match(c["Identificador"])
        assert c["Status"] in {"Ativa", "Inativa"}
        assert BR_DATE.match(c["ClienteDesde"]) or ISO_DATE.match(c["ClienteDesde"])
        assert re.match(r"^\d+\.\d{2}$", c["Honorario"])
        if c["Status"] == "Ativa":
            assert c["ClienteAte"] == "0000-00-00"
        for contact in c["ContatosNaEmpresa"]:
            assert set(contact) == {"Nome", "E-mail", "Celular"}
    desde = [c["ClienteDesde"] for c in rows]
    assert any(BR_DATE.match(d) for d in desde) and any(ISO_DATE.match(d) for d in desde)


def test_contacts_and_departments_only_when_asked(client: httpx.Client) -> None:
    plain = companies_page(client, 1)
    assert all("ContatosNaEmpresa" not in c and "Departamentos" not in c for c in plain)
    rich = companies_page(client, 1, contacts="", departments="")
    assert all(isinstance(c["ContatosNaEmpresa"], list) for c in rich)
    assert any(c["ContatosNaEmpresa"] for c in rich)
    assert all(c["Departamentos"] for c in rich)


def test_ativa_filter(client: httpx.Client, state: AcessoriasState) -> None:
    active = [c for p in (1, 2, 3) for c in companies_page(client, p, ativa="S")]
    expected = [c["ID"] for c in state.companies("tok-a") if c["Status"] == "Ativa"]
    assert [c["ID"] for c in active] == expected
    bad = client.get("/companies/ListAll", params={"ativa": "X"})
    assert (bad.status_code, bad.json()) == (200, {"Erro": "O parâmetro ativa deve ser S ou N"})


def test_tenants_are_told_apart_by_token(server: ServerHandle, state: AcessoriasState) -> None:
    resp = httpx.get(
        f"{server.url}/companies/ListAll",
        headers={"Authorization": "Bearer tok-b"},
        timeout=5,
    )
    assert [c["ID"] for c in resp.json()] == [c["ID"] for c in state.companies("tok-b")]
    ids_a = {c["ID"] for c in state.companies("tok-a")}
    assert state.companies("tok-a")[0]["Razao"] != state.companies("tok-b")[0]["Razao"]
    assert len(ids_a) == 45


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic tok-a", "Bearer", "tok-a"])
def test_missing_or_unknown_token_is_401(server: ServerHandle, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    resp = httpx.get(f"{server.url}/companies/ListAll", headers=headers, timeout=5)
    assert resp.status_code == 401
    assert "Erro" in resp.json()


@pytest.mark.parametrize(
    "query", ["Pagina=0", "Pagina=abc", "Pagina=-1", "foo=1", "Pagina=1&pagina=2"]
)
def test_bad_query_is_a_200_business_error(client: httpx.Client, query: str) -> None:
    resp = client.get(f"/companies/ListAll?{query}")
    assert resp.status_code == 200
    assert set(resp.json()) == {"Erro"}


def test_business_error_knob(client: httpx.Client) -> None:
    set_knobs(client, business_error="Empresa sem permissão de acesso à API")
    resp = client.get("/companies/ListAll?Pagina=1")
    assert (resp.status_code, resp.json()) == (
        200,
        {"Erro": "Empresa sem permissão de acesso à API"},
    )
    set_knobs(client, business_error=None)
    assert len(companies_page(client, 1)) == 20


def test_processes_paging_and_filters(client: httpx.Client, state: AcessoriasState) -> None:
    expected = state.dump("tok-a")["processes"]
    got: list[dict[str, str]] = []
    for page in range(1, 100):
        rows = client.get("/processes/ListAll", params={"Pagina": page}).json()
        if not rows:
            break
        assert len(rows) <= 20
        got += rows
    assert got == expected
    assert all(p["ProcPorcentagem"].endswith("%") for p in got)
    done = client.get("/processes/ListAll", params={"ProcStatus": "Concluído"}).json()
    assert done and all(p["ProcStatus"] == "Concluído" for p in done)
    later = client.get("/processes/ListAll", params={"DtLastDH": "2099-01-01"}).json()
    assert later == []
    bad = client.get("/processes/ListAll", params={"DtLastDH": "01/01/2024"}).json()
    assert "Erro" in bad


def test_deliveries_by_cnpj(client: httpx.Client, state: AcessoriasState) -> None:
    deliveries = state.dump("tok-a")["deliveries"]
    digits, rows = next((d, r) for d, r in deliveries.items() if r)
    window = {"DtInitial": "2024-01-01", "DtFinal": "2024-12-31"}
    resp = client.get(f"/deliveries/{digits}", params=window)
    assert resp.status_code == 200
    body = resp.json()
    assert body["Entregas"] == rows
    assert body["Razao"]
    assert client.get("/deliveries/00000000000000", params=window).status_code == 204
    assert "Erro" in client.get(f"/deliveries/{digits}").json()


# -- provider knobs ---------------------------------------------------------------------------


def test_false_empty_page_under_pressure_then_slow_recheck(client: httpx.Client) -> None:
    set_knobs(client, false_empty_rate=1.0, false_empty_quiet_ms=300)
    time.sleep(0.35)  # quiet: the first request is not under pressure
    assert len(companies_page(client, 1)) == 20
    assert companies_page(client, 2) == []  # right after: a false end of the list
    time.sleep(0.35)
    assert len(companies_page(client, 2)) == 20  # the slow re-check sees the data
    assert client.get("/__admin/stats").json()["faults"] == {"false_empty": 1}


def test_false_empty_never_hides_a_true_end(client: httpx.Client) -> None:
    set_knobs(client, false_empty_rate=1.0, false_empty_quiet_ms=60_000)
    assert len(companies_page(client, 1)) == 20  # first request: not under pressure
    assert companies_page(client, 1) == []  # under pressure: a false empty page
    assert companies_page(client, 4) == []  # the true end is not counted as a fault
    assert client.get("/__admin/stats").json()["faults"] == {"false_empty": 1}


def test_repeat_knob_repeats_an_item_across_pages(client: httpx.Client) -> None:
    set_knobs(client, repeat_rate=1.0)
    pages = [companies_page(client, p) for p in (1, 2, 3)]
    assert [len(p) for p in pages] == [20, 21, 6]
    assert pages[1][0] == pages[0][-1] and pages[2][0] == pages[1][-1]
    ids = [c["ID"] for p in pages for c in p]
    assert len(ids) == 47 and len(set(ids)) == 45


def test_sliding_window_rate_limit_per_token(server: ServerHandle, client: httpx.Client) -> None:
    set_knobs(client, rate_limit_per_min=5, rate_window_s=0.5)
    statuses = [client.get("/companies/ListAll").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    throttled = client.get("/companies/ListAll")
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    other = httpx.get(
        f"{server.url}/companies/ListAll", headers={"Authorization": "Bearer tok-b"}, timeout=5
    )
    assert other.status_code == 200  # the window is per token
    time.sleep(0.55)
    assert client.get("/companies/ListAll").status_code == 200


def test_a_request_failed_with_a_5xx_still_counts_against_the_limit(
    client: httpx.Client,
) -> None:
    """The limit is the API's front door: it counts every request it lets through, whatever
    the backend then answers; an unknown token is refused without being counted."""
    set_knobs(client, rate_limit_per_min=3, rate_window_s=30)
    unknown = client.get("/companies/ListAll", headers={"Authorization": "Bearer nobody"})
    assert unknown.status_code == 401
    set_knobs(client, error_rate=1.0)
    statuses = [client.get("/companies/ListAll").status_code for _ in range(4)]
    assert [s >= 500 for s in statuses[:3]] == [True] * 3 and statuses[3] == 429
    set_knobs(client, error_rate=0.0)
    assert client.get("/companies/ListAll").status_code == 429  # the window is full


def test_default_rate_limit_is_100_per_minute() -> None:
    assert AcessoriasKnobs().rate_limit_per_min == 100
    assert AcessoriasKnobs().rate_window_s == 60


# -- state API ----------------------------------------------------------------------------------


def test_mutated_company_is_served(client: httpx.Client, state: AcessoriasState) -> None:
    target = state.companies("tok-a")[25]
    changed = state.mutate_company("tok-a", target["ID"], Razao="NOVA RAZAO LTDA")
    assert changed["Razao"] == "NOVA RAZAO LTDA" and changed["ID"] == target["ID"]
    served = next(c for c in companies_page(client, 2) if c["ID"] == target["ID"])
    assert served["Razao"] == "NOVA RAZAO LTDA"
    default = state.mutate_company("tok-a")
    assert default["Razao"].endswith("(ALTERADA)")


def test_replace_add_and_remove(client: httpx.Client, state: AcessoriasState) -> None:
    rows = state.companies("tok-b")
    state.set_dataset("tok-a", rows[:2])
    assert [c["ID"] for c in companies_page(client, 1)] == [c["ID"] for c in rows[:2]]
    added = state.add_company("tok-a", Razao="NOVA LTDA")
    assert companies_page(client, 1)[-1]["Razao"] == "NOVA LTDA"
    state.remove_company("tok-a", added["ID"])
    assert len(companies_page(client, 1)) == 2


def test_seeded_data_is_reproducible() -> None:
    one, two, other = AcessoriasState(seed=9), AcessoriasState(seed=9), AcessoriasState(seed=10)
    for st in (one, two, other):
        st.seed_token("t", 30)
    assert one.companies("t") == two.companies("t")
    assert one.companies("t") != other.companies("t")


# -- shared toolkit (_common) -------------------------------------------------------------------


def test_error_rate_injects_5xx_and_admin_is_exempt(client: httpx.Client) -> None:
    set_knobs(client, error_rate=1.0)
    statuses = {client.get("/companies/ListAll").status_code for _ in range(30)}
    assert statuses <= {500, 502, 503} and len(statuses) >= 2
    assert client.get("/__admin/knobs").json()["error_rate"] == 1.0
    stats = client.get("/__admin/stats").json()
    assert stats["requests"] == 30
    assert sum(stats["faults"].values()) == 30


def test_rate_429_knob_and_optional_retry_after(client: httpx.Client) -> None:
    set_knobs(client, rate_429=1.0)
    resp = client.get("/companies/ListAll")
    assert resp.status_code == 429 and "Retry-After" not in resp.headers
    set_knobs(client, retry_after_s=2)
    assert client.get("/companies/ListAll").headers["Retry-After"] == "2"


def test_a_retry_after_of_zero_is_sent_and_an_empty_one_clears_it(client: httpx.Client) -> None:
    """`Retry-After: 0` (retry at once) is a header a client must read, not a missing one;
    an empty value (`--knob retry_after_s=`) sets no Retry-After again."""
    set_knobs(client, rate_429=1.0, retry_after_s=0)
    assert client.get("/companies/ListAll").headers.get("Retry-After") == "0"
    set_knobs(client, retry_after_s="")
    assert client.get("/__admin/knobs").json()["retry_after_s"] is None
    assert "Retry-After" not in client.get("/companies/ListAll").headers


def test_timeout_knob_hangs_then_answers_504(client: httpx.Client) -> None:
    set_knobs(client, timeout_rate=1.0, hang_s=0.6)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/companies/ListAll", timeout=0.2)
    assert client.get("/companies/ListAll", timeout=5).status_code == 504


def test_latency_knob_delays_answers(client: httpx.Client) -> None:
    set_knobs(client, latency_ms=600)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/companies/ListAll", timeout=0.2)
    assert client.get("/companies/ListAll", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"nope": 1}, {"error_rate": 2}, {"rate_429": 1.5}, {"timeout_rate": -0.1},
     {"latency_ms": -1}, {"latency_ms": "abc"}, {"error_rate": 0.5, "nope": 1},
     {"rate_429": 0.5, "hang_s": "long"}, [1], "x"],
)  # fmt: skip
def test_bad_knob_updates_are_400_and_change_nothing(client: httpx.Client, body: object) -> None:
    before = client.get("/__admin/knobs").json()
    resp = client.post("/__admin/knobs", json=body)
    assert resp.status_code == 400 and "error" in resp.json()
    assert client.get("/__admin/knobs").json() == before


def test_reset_restores_knobs_and_clears_counters(client: httpx.Client) -> None:
    set_knobs(client, rate_429=1.0, false_empty_rate=0.5)
    client.get("/companies/ListAll")
    resp = client.post("/__admin/reset")
    assert resp.status_code == 200
    assert resp.json()["knobs"] == AcessoriasKnobs().as_dict()
    assert client.get("/__admin/stats").json() == {
        "requests": 0,
        "by_status": {},
        "by_path": {},
        "faults": {},
    }
    assert client.get("/companies/ListAll").status_code == 200


def test_reset_clears_the_rate_limit_windows_and_replays_the_faults() -> None:
    """After a reset a test starts from scratch: no request counted against the limit, and
    the injected faults drawn again in the same order as from the start."""
    st = AcessoriasState(seed=7, knobs=AcessoriasKnobs(rate_limit_per_min=6, error_rate=0.5))
    st.seed_token("t", 5)
    with (
        start_in_thread(create_app(st)) as handle,
        httpx.Client(base_url=handle.url, headers={"Authorization": "Bearer t"}, timeout=5) as c,
    ):
        first = [c.get("/companies/ListAll").status_code for _ in range(7)]
        assert first[6] == 429 and len(set(first[:6])) >= 2, first
        assert c.post("/__admin/reset").status_code == 200
        assert [c.get("/companies/ListAll").status_code for _ in range(7)] == first


def test_admin_seed_and_data(server: ServerHandle, client: httpx.Client) -> None:
    assert client.post("/__admin/seed", json={"token": "tok-new", "count": 3}).status_code == 200
    assert client.post("/__admin/seed", json={"token": "", "count": 3}).status_code == 400
    data = client.get("/__admin/data", params={"token": "tok-new"}).json()
    assert len(data["companies"]) == 3
    assert client.get("/__admin/data", params={"token": "nobody"}).status_code == 404
    resp = httpx.get(
        f"{server.url}/companies/ListAll", headers={"Authorization": "Bearer tok-new"}, timeout=5
    )
    assert [c["ID"] for c in resp.json()] == [c["ID"] for c in data["companies"]]


def test_fault_rng_is_reproducible() -> None:
    def run() -> list[int]:
        st = AcessoriasState(seed=42, knobs=AcessoriasKnobs(error_rate=0.5, rate_429=0.3))
        st.seed_token("t", 5)
        with (
            start_in_thread(create_app(st)) as handle,
            httpx.Client(headers={"Authorization": "Bearer t"}, timeout=5) as c,
        ):
            return [c.get(f"{handle.url}/companies/ListAll").status_code for _ in range(25)]

    first = run()
    assert first == run()
    assert len(set(first)) >= 3


def test_stop_wakes_hanging_requests(state: AcessoriasState) -> None:
    state.knobs.update({"timeout_rate": 1.0, "hang_s": 30})
    handle = start_in_thread(create_app(state))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{handle.url}/companies/ListAll", timeout=0.2)
    handle.stop()  # returns promptly although a request is still "hanging"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handle.url}/companies/ListAll", timeout=1)


def test_cli_entry_point_serves_seeded_tokens() -> None:
    cmd = [
        sys.executable, "-m", "infra.emulators.acessorias", "--port", "0",
        "--seed-token", "cli-token=25", "--seed", "5", "--knob", "repeat_rate=0",
    ]  # fmt: skip
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            headers = {"Authorization": "Bearer cli-token"}
            rows = httpx.get(f"{url}/companies/ListAll?Pagina=2", headers=headers, timeout=5)
            assert len(rows.json()) == 5
            assert httpx.get(f"{url}/__admin/knobs", timeout=5).json()["rate_limit_per_min"] == 100
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_cli_fault_flags_set_their_knobs() -> None:
    """`--error-rate` and the other fault flags are the knobs of the same name."""
    cmd = [
        sys.executable, "-m", "infra.emulators.acessorias", "--port", "0", "--latency-ms", "5",
        "--error-rate", "0.25", "--rate-429", "0.5", "--timeout-rate", "0.125", "--hang-s", "2",
    ]  # fmt: skip
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            knobs = httpx.get(f"{url}/__admin/knobs", timeout=5).json()
            set_by_flags = {
                k: knobs[k]
                for k in ("latency_ms", "error_rate", "rate_429", "timeout_rate", "hang_s")
            }
            assert set_by_flags == {
                "latency_ms": 5,
                "error_rate": 0.25,
                "rate_429": 0.5,
                "timeout_rate": 0.125,
                "hang_s": 2.0,
            }
        finally:
            proc.terminate()
            proc.wait(timeout=10)
