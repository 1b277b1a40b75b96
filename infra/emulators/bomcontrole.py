"""BomControle API emulator (ERP), see ../shared/PROVIDERS.md.

Run: ``python -m infra.emulators.bomcontrole --port 8103 --seed-token demo-key=2000``.

Paths as the real API (base ``https://apinewintegracao.bomcontrole.com.br``), auth
``Authorization: ApiKey <key>`` (missing or another scheme -> 401, unknown key -> 403 ⚠):

* ``GET /integracao/Financeiro/Pesquisar?dataInicio=yyyy-mm-dd%20hh:mi:ss&dataTermino=...
  &tipoData=UltimaAlteracao&paginacao.itensPorPagina=50&paginacao.numeroDaPagina=1``
  -> ``{"Itens": [...], "TotalItens": N}``. Dates are inclusive bounds on the field that
  ``tipoData`` names (DataPadrao/DataPrevista -> DataVencimento, DataPagamento ->
  DataQuitacao, DataCompetencia, DataConciliacao, Criacao -> DataCriacaoParcela,
  UltimaAlteracao -> DataUltimaAlteracao); items are ordered by that field, then id.
  400 ``{"Message", "ModelState"}`` for: a ``+`` instead of ``%20`` in a date, a missing
  or malformed date, a missing or unknown ``tipoData``, ``itensPorPagina`` outside 1..100
  (default 50), ``numeroDaPagina`` < 1 (default 1). A page past the end -> ``Itens: []``.
* ``GET /integracao/Cliente/Pesquisar?pesquisa=<text>`` -> a bare array of client
  summaries, no paging; fuzzy (accent/case-insensitive, every word must match the name,
  trade name or document); an empty ``pesquisa`` lists every client ⚠.
* ``GET /integracao/Cliente/Obter/{id}`` -> the full client, 404 ``{"Message"}`` when missing.

Timestamps are Brasília local time without an offset (``2024-05-01T12:00:00`` or with
milliseconds), like the real service ⚠; ``utc_offset_hours`` (-3) sets the emulator's
clock, which ``mutate_item`` uses to bump ``DataUltimaAlteracao``. Throttling is unknown in
the real API: the ``rate_429`` and ``rate_limit_per_min`` knobs produce 429s.
"""

from __future__ import annotations

import sys
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any, ClassVar

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
    email_for,
    mobile,
    only_digits,
    person_name,
)

DATE_FIELDS = {
    "DataPadrao": "DataVencimento",
    "DataPrevista": "DataVencimento",
    "DataPagamento": "DataQuitacao",
    "DataCompetencia": "DataCompetencia",
    "DataConciliacao": "DataConciliacao",
    "Criacao": "DataCriacaoParcela",
    "UltimaAlteracao": "DataUltimaAlteracao",
}
PAYMENT_FORMS = ((13, "Boleto Bancário"), (5, "Transferência Bancária"), (6, "Cartão de Crédito"))
PIX = (10, "Pix")
SUPPLIERS = ("Copel Distribuição", "Vivo Empresas", "Kalunga", "Contabilizei", "Aluguel Sede")


@dataclass
class BomControleKnobs(Knobs):
    """Common knobs plus the page-size limit and the service's clock offset."""

    max_page_size: int = 100
    utc_offset_hours: float = -3.0

    signed: ClassVar[frozenset[str]] = frozenset({"utc_offset_hours"})


def stamp(moment: datetime) -> str:
    """.NET-style local timestamp: seconds, plus milliseconds when there are any."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if moment.microsecond >= 1000 else text


def make_client(rng: Random, client_id: int) -> dict[str, Any]:
    """One client as ``Cliente/Obter`` returns it ⚠ (a company, now and then a person)."""
    razao, fantasia = company_name(rng)
    uf = rng.choice(list(UF_DDD))
    contact = person_name(rng)
    return {
        "Id": client_id,
        "TipoPessoa": "Juridica",
        "PessoaJuridica": {
            "Documento": only_digits(cnpj(rng)),
            "RazaoSocial": razao,
            "NomeFantasia": fantasia,
            "InscricaoEstadual": None if rng.random() < 0.5 else str(rng.randint(10**8, 10**9)),
        },
        "PessoaFisica": None,
        "Endereco": {
            "TipoLogradouro": "Rua",
            "Logradouro": f"{rng.choice(('Sete de Setembro', 'XV de Novembro', 'das Flores'))}",
            "Numero": str(rng.randint(1, 3000)),
            "Complemento": None,
            "Bairro": "Centro",
            "Cep": f"{rng.randint(10000, 99999)}-{rng.randint(100, 999)}",
            "Cidade": "São Paulo" if uf == "SP" else "Capital",
            "Uf": uf,
        },
        "Contatos": [
            {
                "Nome": contact,
                "Email": email_for(contact, rng),
                "Telefone": mobile(rng, uf),
                "Padrao": True,
                "Cobranca": rng.random() < 0.5,
            }
        ],
        "Bloqueado": rng.random() < 0.03,
    }


def client_summary(client: dict[str, Any]) -> dict[str, Any]:
    """The shape ``Cliente/Pesquisar`` lists ⚠."""
    pj = client["PessoaJuridica"] or {}
    return {
        "Id": client["Id"],
        "Nome": pj.get("RazaoSocial"),
        "NomeFantasia": pj.get("NomeFantasia"),
        "Documento": pj.get("Documento"),
        "TipoPessoa": client["TipoPessoa"],
        "Bloqueado": client["Bloqueado"],
    }


def make_item(rng: Random, client: dict[str, Any]) -> dict[str, Any]:
    """One financial installment (``Financeiro/Pesquisar`` item)."""
    debit = rng.random() < 0.3
    due = date(2023, 1, 1) + timedelta(days=rng.randint(0, 700))
    created = datetime(due.year, due.month, due.day, 9) - timedelta(
        days=rng.randint(5, 60), minutes=rng.randint(0, 500), milliseconds=rng.randint(0, 999)
    )
    paid = None if rng.random() < 0.4 else due + timedelta(days=rng.randint(-3, 10))
    changed = created + timedelta(days=rng.randint(0, 90), seconds=rng.randint(0, 86399))
    form = PIX if rng.random() < 0.2 else rng.choice(PAYMENT_FORMS)
    value = rng.randint(30, 9000) if rng.random() < 0.3 else round(rng.uniform(30, 9000), 2)
    pj = client["PessoaJuridica"]
    party = (rng.choice(SUPPLIERS), None) if debit else (pj["RazaoSocial"], pj["Documento"])
    return {
        "IdMovimentacaoFinanceiraParcela": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "Debito": debit,
        "DataVencimento": f"{due.isoformat()}T00:00:00",
        "DataCompetencia": f"{due.replace(day=1).isoformat()}T00:00:00",
        "DataQuitacao": None if paid is None else f"{paid.isoformat()}T00:00:00",
        "DataConciliacao": None if paid is None else f"{paid.isoformat()}T00:00:00",
        "Valor": value,
        "FormaPagamento": form[0],
        "NomeFormaPagamento": form[1],
        "Nome": f"{'Pagamento' if debit else 'Recebimento'} referente a {due:%m/%Y}",
        "Observacao": None,
        "NumeroParcela": rng.randint(1, 12),
        "QuantidadeParcela": 0,
        "IdEmpresa": 1,
        "NomeEmpresa": "Empresa Demo",
        "DocumentoEmpresa": "65961561000100",
        "IdCliente": None if debit else client["Id"],
        "IdFornecedor": rng.randint(1, 50) if debit else None,
        "NomeClienteFornecedor": party[0],
        "DocumentoClienteFornecedor": party[1],
        "DataCriacaoParcela": stamp(created),
        "DataUltimaAlteracao": stamp(changed),
    }


class BomControleState(EmulatorState):
    """Per-key datasets (financial items and clients) plus knobs and counters."""

    knobs_cls = BomControleKnobs
    knobs: BomControleKnobs

    def __init__(self, *, seed: int = 0, knobs: Knobs | None = None) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self._items = Datasets(self.lock, "IdMovimentacaoFinanceiraParcela", sort=False)
        self._clients = Datasets(self.lock, "Id")
        self.clock: Callable[[], datetime] = self._local_now

    def _local_now(self) -> datetime:
        offset = timedelta(hours=self.knobs.utc_offset_hours)
        return (datetime.now(UTC) + offset).replace(tzinfo=None)

    def seed_token(self, token: str, count: int) -> None:
        """Generate ``count`` financial items and ``count // 4`` (>= 1) clients for a key."""
        rng = self.data_rng(token)
        first = rng.randint(1000, 20000)
        clients = [make_client(rng, first + i) for i in range(max(1, count // 4))]
        self.set_dataset(
            token, [make_item(rng, rng.choice(clients)) for _ in range(count)], clients
        )

    def set_dataset(
        self, token: str, items: list[dict[str, Any]], clients: list[dict[str, Any]]
    ) -> None:
        """Add or replace a key's whole dataset."""
        with self.lock:
            self._items.set(token, items)
            self._clients.set(token, clients)

    def tokens(self) -> list[str]:
        """Known API keys."""
        return self._items.tokens()

    def items(self, token: str) -> list[dict[str, Any]]:
        """A copy of every financial item of a key."""
        return self._items.copy(token)

    def clients(self, token: str) -> list[dict[str, Any]]:
        """A copy of every client of a key (full records)."""
        return self._clients.copy(token)

    def mutate_item(self, token: str, item_id: str | None = None, **changes: Any) -> dict[str, Any]:
        """Change one item (default: the first; default change: Valor + 10) and bump
        its DataUltimaAlteracao to the emulator's clock."""
        return self._items.mutate(
            token,
            item_id,
            changes,
            default=lambda row: {"Valor": round(float(row["Valor"]) + 10, 2)},
            stamp={"DataUltimaAlteracao": stamp(self.clock())},
        )

    def add_item(self, token: str, **overrides: Any) -> dict[str, Any]:
        """Create a new item now (Criacao and UltimaAlteracao = the clock) and return it."""
        with self.lock:
            rng = Random(f"{self.seed}:{token}:{len(self._items.snapshot(token))}")
            item = make_item(rng, rng.choice(self._clients.snapshot(token)))
            now = stamp(self.clock())
            item.update(overrides, DataCriacaoParcela=now, DataUltimaAlteracao=now)
            return self._items.append(token, item)

    def mutate_client(self, token: str, client_id: int, **changes: Any) -> dict[str, Any]:
        """Replace top-level fields of one client and return it."""
        return self._clients.mutate(token, client_id, changes)

    def dump(self, token: str) -> Any:
        """Everything a key owns, or None."""
        with self.lock:
            if token not in self._items:
                return None
            return {"items": self._items.snapshot(token), "clients": self._clients.snapshot(token)}

    def search(self, token: str, field: str, low: str, high: str) -> list[dict[str, Any]]:
        """Items whose ``field`` lies in [low, high] (same-format strings compare as dates)."""
        rows = self._items.snapshot(token)
        hits = [it for it in rows if it[field] is not None and low <= it[field] <= high]
        return sorted(hits, key=lambda it: (it[field], it["IdMovimentacaoFinanceiraParcela"]))


def _message(
    status: int, message: str, model_state: dict[str, list[str]] | None = None
) -> Response:
    body: dict[str, Any] = {"Message": message}
    if model_state:
        body["ModelState"] = model_state
    resp = jsonify(body)
    resp.status_code = status
    return resp


def _error_response(status: int, message: str) -> Response:
    if status == 429:
        return _message(429, "Limite de requisições excedido. Tente novamente mais tarde.")
    return _message(status, "An error has occurred.")


def _invalid(field: str, problem: str) -> Response:
    return _message(400, "A requisição é inválida.", {field: [problem]})


def _authorize(state: BomControleState) -> str | Response:
    header = request.headers.get("Authorization")
    key = bearer_token(header, scheme="ApiKey")
    if key is None:
        return _message(401, "Authorization has been denied for this request.")
    if key not in state.tokens():
        return _message(403, "Chave de API inválida ou sem permissão.")
    if not state.take_rate_slot(key):
        return too_many_requests(state, _error_response)
    return key


def _raw_query_has_plus(*names: str) -> str | None:
    """The first named parameter whose raw (undecoded) value has a '+', else None."""
    for pair in request.query_string.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name in names and "+" in value:
            return name
    return None


def _bound(name: str, end_of_day: bool) -> str | Response:
    raw = request.args.get(name)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(raw or "", fmt)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and end_of_day:
            moment += timedelta(days=1, microseconds=-1000)
        return stamp(moment) if moment.microsecond else moment.strftime("%Y-%m-%dT%H:%M:%S")
    return _invalid(
        name, f"O valor '{raw or ''}' não é válido para {name}. Use aaaa-mm-dd hh24:mi:ss."
    )


def _paging(max_size: int) -> tuple[int, int] | Response:
    raw_size = request.args.get("paginacao.itensPorPagina", "50")
    raw_page = request.args.get("paginacao.numeroDaPagina", "1")
    if not raw_size.isdigit() or not 1 <= int(raw_size) <= max_size:
        return _invalid(
            "paginacao.itensPorPagina", f"Numero máximo permitido é de {max_size} itens."
        )
    if not raw_page.isdigit() or int(raw_page) < 1:
        return _invalid("paginacao.numeroDaPagina", "O número da página deve ser maior que zero.")
    return int(raw_page), int(raw_size)


def _pesquisar_financeiro(state: BomControleState, key: str) -> Response:
    plus = _raw_query_has_plus("dataInicio", "dataTermino")
    if plus:
        return _invalid(plus, f"O valor informado para {plus} não é uma data válida.")
    low, high = _bound("dataInicio", False), _bound("dataTermino", True)
    if isinstance(low, Response):
        return low
    if isinstance(high, Response):
        return high
    tipo = request.args.get("tipoData", "")
    if tipo not in DATE_FIELDS:
        return _invalid("tipoData", f"O valor '{tipo}' não é válido para tipoData.")
    paging = _paging(state.knobs.max_page_size)
    if isinstance(paging, Response):
        return paging
    page, size = paging
    hits = state.search(key, DATE_FIELDS[tipo], low, high)
    return jsonify({"Itens": hits[(page - 1) * size : page * size], "TotalItens": len(hits)})


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _matches(summary: dict[str, Any], words: list[str]) -> bool:
    haystack = _fold(" ".join(str(summary[k] or "") for k in ("Nome", "NomeFantasia", "Documento")))
    return all(word in haystack for word in words)


def create_app(state: BomControleState) -> Flask:
    """The BomControle emulator as a WSGI app."""
    app = make_app("bomcontrole", state, _error_response)

    @app.get("/integracao/Financeiro/Pesquisar")
    def pesquisar_financeiro() -> Response:
        key = _authorize(state)
        return key if isinstance(key, Response) else _pesquisar_financeiro(state, key)

    @app.get("/integracao/Cliente/Pesquisar")
    def pesquisar_cliente() -> Response:
        key = _authorize(state)
        if isinstance(key, Response):
            return key
        words = [_fold(w) for w in request.args.get("pesquisa", "").split()]
        summaries = [client_summary(c) for c in state.clients(key)]
        return jsonify([s for s in summaries if _matches(s, words)])

    @app.get("/integracao/Cliente/Obter/<client_id>")
    def obter_cliente(client_id: str) -> Response:
        key = _authorize(state)
        if isinstance(key, Response):
            return key
        if not client_id.isdigit():
            return _invalid("id", f"O valor '{client_id}' não é válido para id.")
        found = next((c for c in state.clients(key) if c["Id"] == int(client_id)), None)
        return jsonify(found) if found else _message(404, "Cliente não encontrado.")

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m infra.emulators.bomcontrole``."""
    run_cli(create_app, argv, state_factory=BomControleState, name="bomcontrole", default_port=8103)


if __name__ == "__main__":
    main(sys.argv[1:])
