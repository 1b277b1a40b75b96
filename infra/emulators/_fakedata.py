"""Seeded, realistic Brazilian data for the provider emulators (names, CNPJ/CPF, phones)."""

from __future__ import annotations

import random
import string

FIRST_NAMES = (
    "Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Heitor", "Isabela",
    "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Tiago",
    "Vitória", "William", "Beatriz", "Caio", "Débora", "Érica", "Fábio", "Lúcia", "Conceição",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
    "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Araújo", "Melo", "Barbosa",
    "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques", "Machado",
)  # fmt: skip
BUSINESS_WORDS = (
    "Comércio", "Serviços", "Contábil", "Transportes", "Alimentos", "Construtora", "Tecnologia",
    "Distribuidora", "Indústria", "Consultoria", "Padaria", "Auto Peças", "Clínica", "Farmácia",
    "Engenharia", "Agropecuária", "Materiais", "Confecções", "Logística", "Imobiliária",
)  # fmt: skip
COMPANY_SUFFIXES = ("LTDA", "LTDA", "LTDA - ME", "EIRELI", "S.A.", "ME", "EPP")
UF_DDD = {
    "SP": (11, 19), "RJ": (21, 24), "MG": (31, 35), "PR": (41, 44), "SC": (47, 48),
    "RS": (51, 54), "BA": (71, 75), "PE": (81, 87), "CE": (85, 88), "GO": (62, 64),
    "DF": (61, 61), "ES": (27, 28), "AM": (92, 97), "PA": (91, 94),
}  # fmt: skip


def _with_check_digits(digits: list[int], cycle: bool) -> str:
    """Append the two mod-11 check digits (CNPJ weights cycle 2..9, CPF weights grow)."""
    out = list(digits)
    for _ in range(2):
        total = sum(d * ((i % 8) + 2 if cycle else i + 2) for i, d in enumerate(reversed(out)))
        rest = total % 11
        out.append(0 if rest < 2 else 11 - rest)
    return "".join(map(str, out))


def cnpj(rng: random.Random) -> str:
    """A formatted CNPJ with valid check digits (matriz, /0001)."""
    d = _with_check_digits([rng.randint(0, 9) for _ in range(8)] + [0, 0, 0, 1], cycle=True)
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


def cpf(rng: random.Random) -> str:
    """A formatted CPF with valid check digits."""
    d = _with_check_digits([rng.randint(0, 9) for _ in range(9)], cycle=False)
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def only_digits(text: str) -> str:
    """The digits of a document or phone number."""
    return "".join(ch for ch in text if ch in string.digits)


def person_name(rng: random.Random) -> str:
    """A Brazilian full name."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {rng.choice(LAST_NAMES)}"


def company_name(rng: random.Random) -> tuple[str, str]:
    """(razão social, nome fantasia)."""
    fantasy = f"{rng.choice(LAST_NAMES)} {rng.choice(BUSINESS_WORDS)}"
    return f"{fantasy} {rng.choice(COMPANY_SUFFIXES)}".upper(), fantasy


def mobile(rng: random.Random, uf: str, country: bool = False) -> str:
    """A mobile number (DDD + 9 digits), optionally with the 55 country code."""
    low, high = UF_DDD.get(uf, (11, 11))
    number = f"{rng.randint(low, high)}9{rng.randint(10_000_000, 99_999_999)}"
    return f"55{number}" if country else number


def email_for(name: str, rng: random.Random) -> str:
    """A plausible e-mail address for a name."""
    ascii_name = name.lower().translate(str.maketrans("áâãàéêíóôõúüç", "aaaaeeiooouuc"))
    user = ".".join(ascii_name.split()[:2])
    return f"{user}{rng.randint(1, 99)}@{rng.choice(('gmail.com', 'hotmail.com', 'uol.com.br'))}"
