"""Acessórias API emulator (accounting-office platform), see ../shared/PROVIDERS.md.

Run: ``python -m infra.emulators.acessorias --port 8101 --seed-token demo-token=250``.

Paths as the real API (base ``https://api.acessorias.com``):

* ``GET /companies/ListAll?Pagina=N[&ativa=S|N][&contacts][&departments]`` -> a JSON array,
  20 per page, ordered by ``ID``; the end is an empty page ``[]`` (no total).
  ``ContatosNaEmpresa`` (``Nome``, ``E-mail``, ``Celular``) is only present with
  ``&contacts``, ``Departamentos`` only with ``&departments``, as in the real API.
* ``GET /processes/ListAll?Pagina=N[&ProcStatus=..][&DtLastDH=yyyy-mm-dd[ hh:mm:ss]]``.
* ``GET /deliveries/{cnpj}?DtInitial=yyyy-mm-dd&DtFinal=yyyy-mm-dd&Pagina=N`` (cnpj digits or
  formatted) -> ``{"Razao", "Entregas": [...]}``, 50 per page; unknown cnpj -> 204.

Behaviour: ``Authorization: Bearer <token>`` (missing/unknown -> 401 ``{"Erro"}``); almost
every value is a string; dates mix dd/mm/yyyy and yyyy-mm-dd and ``"0000-00-00"`` means no
date; business errors are **HTTP 200 ``{"Erro": "..."}``** (unknown query parameter, bad
``Pagina``, or the ``business_error`` knob); a sliding-window limit of
``rate_limit_per_min`` (100) requests per token per ``rate_window_s`` -> 429 without
Retry-After.

Provider knobs (besides the common ones in ``_common.Knobs``):

* ``false_empty_rate``: a page that has data answers 200 ``[]`` with this probability, but
  only "under pressure", i.e. when the same token's previous request came less than
  ``false_empty_quiet_ms`` ago; a re-check after a pause that long always sees the data.
* ``repeat_rate``: probability that page N>1 starts with the last item of page N-1 (the
  page then has 21 rows): listings repeat items across pages, so clients upsert by key.
* ``business_error``: when set, every data request answers 200 ``{"Erro": <value>}``.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random
from typing import Any, NamedTuple

from flask import Flask, Response, jsonify, request

from infra.emulators._common import (
    EmulatorState,
    Knobs,
    bearer_token,
    make_app,
    run_cli,
    too_many_requests,
)
from infra.emulators._datasets import Datasets
from infra.emulators._fakedata import (
    UF_DDD,
    cnpj,
    company_name,
    cpf,
    email_for,
    mobile,
    only_digits,
    person_name,
)

COMPANIES_PER_PAGE = 20
PROCESSES_PER_PAGE = 20
DELIVERIES_PER_PAGE = 50
PROCESS_NAMES = ("Abertura de Empresa", "Alteração Contratual", "Admissão", "Rescisão", "Baixa")
PROCESS_STATUSES = ("Em andamento", "Concluído", "Paralisado")
OBLIGATIONS = ("DCTFWeb", "EFD-Reinf", "DAS - Simples Nacional", "SPED Fiscal", "FGTS Digital")
DEPARTMENTS = ("Fiscal", "Contábil", "Pessoal", "Societário")


@dataclass
class AcessoriasKnobs(Knobs):
    """Common knobs plus the Acessórias quirks."""

    rate_limit_per_min: int = 100
    false_empty_rate: float = 0.0
    false_empty_quiet_ms: int = 1000
    repeat_rate: float = 0.0
    business_error: str | None = None


def _date_text(rng: Random, day: date) -> str:
    """Dates come in either format, as in the real data."""
    return day.strftime("%d/%m/%Y") if rng.random() < 0.4 else day.isoformat()


def _contacts(rng: Random, uf: str) -> list[dict[str, str]]:
    out = []
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        name = person_name(rng)
        email = email_for(name, rng) if rng.random() < 0.8 else ""
        out.append({"Nome": name, "E-mail": email, "Celular": mobile(rng, uf)})
    return out


def make_company(rng: Random, company_id: int) -> dict[str, Any]:
    """One realistic company record (every scalar a string)."""
    razao, fantasia = company_name(rng)
    uf = rng.choice(list(UF_DDD))
    active = rng.random() < 0.85
    since = date(2008, 1, 1) + timedelta(days=rng.randint(0, 6000))
    until = "0000-00-00" if active else _date_text(rng, since + timedelta(rng.randint(30, 2000)))
    honorario = "0.00" if rng.random() < 0.05 else f"{rng.randint(150, 4800)}.{rng.choice('059')}0"
    return {
        "ID": str(company_id),
        "Identificador": cpf(rng) if rng.random() < 0.05 else cnpj(rng),
        "Razao": razao,
        "Fantasia": fantasia,
        "Status": "Ativa" if active else "Inativa",
        "UF": uf,
        "ClienteDesde": _date_text(rng, since),
        "ClienteAte": until,
        "Honorario": honorario,
        "ContatosNaEmpresa": _contacts(rng, uf),
        "Departamentos": [{"Nome": d} for d in rng.sample(DEPARTMENTS, rng.randint(1, 3))],
    }


def _make_processes(rng: Random, companies: list[dict[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for company in companies:
        for _ in range(rng.choice((0, 0, 1, 2))):
            start = date(2022, 1, 1) + timedelta(days=rng.randint(0, 900))
            status = rng.choice(PROCESS_STATUSES)
            done = status == "Concluído"
            last = datetime(start.year, start.month, start.day) + timedelta(
                hours=rng.randint(1, 900)
            )
            out.append({
                "ProcID": str(5000 + len(out)),
                "ProcNome": rng.choice(PROCESS_NAMES),
                "ProcStatus": status,
                "ProcPorcentagem": "100%" if done else f"{rng.randint(0, 95)}%",
                "ProcInicio": _date_text(rng, start),
                "ProcConclusao": (start + timedelta(days=20)).isoformat() if done else "0000-00-00",
                "ProcLastDH": last.strftime("%Y-%m-%d %H:%M:%S"),
                "EmpID": company["ID"],
                "EmpCNPJ": company["Identificador"],
            })  # fmt: skip
    return out


def _make_deliveries(rng: Random, companies: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for company in companies:
        rows = []
        for n in range(rng.randint(0, 6)):
            due = date(2024, 1 + n % 12, 20)
            delivered = rng.random() < 0.7
            rows.append({
                "Nome": rng.choice(OBLIGATIONS),
                "EntCompetencia": f"{due.month:02d}/{due.year}",
                "EntDtPrazo": due.isoformat(),
                "EntDtEntrega": (due - timedelta(2)).isoformat() if delivered else "0000-00-00",
                "Status": "Entregue" if delivered else rng.choice(("Pendente", "Atrasada")),
                "EntMulta": "0.00" if delivered else f"{rng.randint(0, 500)}.00",
                "EntLastDH": f"{due.isoformat()} 10:{rng.randint(10, 59)}:00",
                "Config": {"Recorrencia": "Mensal", "DiasAntecedencia": "5"},
            })  # fmt: skip
        out[only_digits(company["Identificador"])] = rows
    return out


def _default_change(company: dict[str, Any]) -> dict[str, str]:
    """What ``mutate_company`` changes when told nothing: Razao and Honorario."""
    fee = float(company["Honorario"]) + 10
    return {"Razao": f"{company['Razao']} (ALTERADA)", "Honorario": f"{fee:.2f}"}


class AcessoriasState(EmulatorState):
    """Per-token datasets (companies, processes, deliveries) plus knobs and counters."""

    knobs_cls = AcessoriasKnobs
    knobs: AcessoriasKnobs

    def __init__(self, *, seed: int = 0, knobs: Knobs | None = None) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self._companies = Datasets(self.lock, "ID", first_id=100)
        self._processes = Datasets(self.lock, "ProcID", sort=False)
        self._deliveries: dict[str, dict[str, list[Any]]] = {}
        self._last_seen: dict[str, float] = {}

    def _reset_extra(self) -> None:
        self._last_seen.clear()

    def seed_token(self, token: str, count: int) -> None:
        """Generate ``count`` companies (and their processes and deliveries) for a token."""
        rng = self.data_rng(token)
        first_id = rng.randint(100, 900)
        companies = [make_company(rng, first_id + i) for i in range(count)]
        self.set_dataset(
            token, companies, _make_processes(rng, companies), _make_deliveries(rng, companies)
        )

    def set_dataset(
        self,
        token: str,
        companies: list[dict[str, Any]],
        processes: list[dict[str, str]] | None = None,
        deliveries: dict[str, list[Any]] | None = None,
    ) -> None:
        """Add or replace a tenant's whole dataset (companies are served ordered by ID)."""
        with self.lock:
            self._companies.set(token, companies)
            self._processes.set(token, processes or [])
            self._deliveries[token] = copy.deepcopy(deliveries or {})

    def tokens(self) -> list[str]:
        """Known tenant tokens."""
        return self._companies.tokens()

    def companies(self, token: str) -> list[dict[str, Any]]:
        """A copy of every company of a token, with contacts and departments."""
        return self._companies.copy(token)

    def mutate_company(
        self, token: str, company_id: str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change one company (default: the first; default change: Razao and Honorario)."""
        return self._companies.mutate(token, company_id, changes, default=_default_change)

    def add_company(self, token: str, **overrides: Any) -> dict[str, Any]:
        """Append a new company (next ID) and return it."""

        def build(next_id: int) -> dict[str, Any]:
            company = make_company(Random(f"{self.seed}:{token}:{next_id}"), next_id)
            company.update(overrides, ID=str(next_id))
            return company

        return self._companies.add(token, build)

    def remove_company(self, token: str, company_id: str) -> None:
        """Delete one company from the listing."""
        self._companies.remove(token, company_id)

    def dump(self, token: str) -> Any:
        """Everything a token owns, or None."""
        with self.lock:
            if token not in self._companies:
                return None
            return {
                "companies": self._companies.snapshot(token),
                "processes": self._processes.snapshot(token),
                "deliveries": self._deliveries[token],
            }

    def under_pressure(self, token: str) -> bool:
        """True when the token's previous request was less than the quiet gap ago."""
        now = time.monotonic()
        with self.lock:
            last = self._last_seen.get(token)
            self._last_seen[token] = now
        return last is not None and (now - last) * 1000 < self.knobs.false_empty_quiet_ms

    def rows(self, kind: str, token: str) -> list[Any]:
        """The current list a listing endpoint pages through."""
        return (self._companies if kind == "companies" else self._processes).snapshot(token)

    def deliveries_of(self, token: str, digits: str) -> list[Any] | None:
        """The deliveries of one company of the token, None when it is not one of them."""
        with self.lock:
            return self._deliveries[token].get(digits)


def _erro(message: str, status: int = 200) -> Response:
    """Acessórias reports errors in an ``Erro`` field, usually with HTTP 200."""
    resp = jsonify({"Erro": message})
    resp.status_code = status
    return resp


def _error_response(status: int, message: str) -> Response:
    return _erro("Too Many Attempts." if status == 429 else message, status)


class _Call(NamedTuple):
    token: str
    page: int
    pressured: bool


def _gate(state: AcessoriasState) -> Response | None:
    """The API's front door: every request of a known token counts against its limit, one
    the backend then fails with a 5xx or a timeout too."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None and token in state.tokens() and not state.take_rate_slot(token):
        return too_many_requests(state, _error_response)
    return None


def _guard(state: AcessoriasState, allowed: set[str]) -> _Call | Response:
    """Auth, business-error knob and query validation, else the reply to send."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None or token not in state.tokens():
        return _erro("Token inválido ou não informado", 401)
    pressured = state.under_pressure(token)
    if state.knobs.business_error:
        return _erro(state.knobs.business_error)
    unknown = sorted(set(request.args) - allowed - {"Pagina"})
    if unknown:
        return _erro(f"Parâmetro não reconhecido: {unknown[0]}")
    raw_page = request.args.get("Pagina", "1")
    if not raw_page.isdigit() or int(raw_page) < 1:
        return _erro("O parâmetro Pagina deve ser um número inteiro maior que zero")
    return _Call(token, int(raw_page), pressured)


def _page(state: AcessoriasState, rows: Sequence[Any], call: _Call, size: int) -> list[Any]:
    """Slice one page, applying the false-empty and repeat knobs."""
    start = (call.page - 1) * size
    chunk = list(rows[start : start + size])
    if chunk and call.pressured and state.chance(state.knobs.false_empty_rate):
        state.record_fault("false_empty")
        return []
    if chunk and call.page > 1 and state.chance(state.knobs.repeat_rate):
        state.record_fault("repeat")
        chunk.insert(0, rows[start - 1])
    return chunk


def _company_view(company: dict[str, Any], contacts: bool, departments: bool) -> dict[str, Any]:
    view = {k: v for k, v in company.items() if k not in {"ContatosNaEmpresa", "Departamentos"}}
    if contacts:
        view["ContatosNaEmpresa"] = company["ContatosNaEmpresa"]
    if departments:
        view["Departamentos"] = company["Departamentos"]
    return view


def _parse_day(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def create_app(state: AcessoriasState) -> Flask:
    """The Acessórias emulator as a WSGI app."""
    app = make_app("acessorias", state, _error_response, gate=lambda: _gate(state))

    @app.get("/companies/ListAll")
    def list_companies() -> Response:
        guarded = _guard(state, {"ativa", "contacts", "departments"})
        if isinstance(guarded, Response):
            return guarded
        ativa = request.args.get("ativa")
        if ativa not in (None, "S", "N"):
            return _erro("O parâmetro ativa deve ser S ou N")
        rows = state.rows("companies", guarded.token)
        if ativa is not None:
            rows = [c for c in rows if (c["Status"] == "Ativa") == (ativa == "S")]
        flags = ("contacts" in request.args, "departments" in request.args)
        return jsonify(
            [_company_view(c, *flags) for c in _page(state, rows, guarded, COMPANIES_PER_PAGE)]
        )

    @app.get("/processes/ListAll")
    def list_processes() -> Response:
        guarded = _guard(state, {"ProcStatus", "DtLastDH"})
        if isinstance(guarded, Response):
            return guarded
        rows = state.rows("processes", guarded.token)
        if status := request.args.get("ProcStatus"):
            rows = [p for p in rows if p["ProcStatus"].lower() == status.lower()]
        if (since_text := request.args.get("DtLastDH")) is not None:
            since = _parse_day(since_text)
            if since is None:
                return _erro("DtLastDH inválida, use yyyy-mm-dd")
            rows = [p for p in rows if p["ProcLastDH"] >= since.strftime("%Y-%m-%d %H:%M:%S")]
        return jsonify(_page(state, rows, guarded, PROCESSES_PER_PAGE))

    @app.get("/deliveries/<path:document>")
    def list_deliveries(document: str) -> Response:
        guarded = _guard(state, {"DtInitial", "DtFinal"})
        if isinstance(guarded, Response):
            return guarded
        first = _parse_day(request.args.get("DtInitial", ""))
        last = _parse_day(request.args.get("DtFinal", ""))
        if first is None or last is None:
            return _erro("Informe DtInitial e DtFinal no formato yyyy-mm-dd")
        digits = only_digits(document)
        deliveries = state.deliveries_of(guarded.token, digits)
        if deliveries is None:
            return Response(status=204)
        low, high = first.date().isoformat(), last.date().isoformat()
        window = [d for d in deliveries if low <= d["EntDtPrazo"] <= high]
        companies = state.rows("companies", guarded.token)
        razao = next(
            (c["Razao"] for c in companies if only_digits(c["Identificador"]) == digits), ""
        )
        entregas = _page(state, window, guarded, DELIVERIES_PER_PAGE)
        return jsonify({"Razao": razao, "Entregas": entregas})

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m infra.emulators.acessorias``."""
    run_cli(create_app, argv, state_factory=AcessoriasState, name="acessorias", default_port=8101)


if __name__ == "__main__":
    main(sys.argv[1:])
