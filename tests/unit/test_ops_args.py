"""The ops CLI's argument types (durations, bounded whole numbers) and `token`, whose claims
are what curl then sends: each unit, each bound and each option means what the help says."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import jwt
import pytest

from infra.local import demo
from infra.ops._args import MAX_DAYS, duration_s, positive_duration_s, whole_number


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1.5h", 5400),
     ("2H", 7200), (" 30M ", 1800)],
)  # fmt: skip
def test_a_duration_means_its_unit(text: str, seconds: float) -> None:
    """`--older-than 30m` read as 30 seconds would close jobs that are alive."""
    assert duration_s(text) == seconds
    assert positive_duration_s(text) == seconds


def test_the_longest_threshold_the_help_names_is_accepted() -> None:
    assert positive_duration_s(f"{MAX_DAYS}d") == MAX_DAYS * 86400
    with pytest.raises(argparse.ArgumentTypeError, match=f"at most {MAX_DAYS}d"):
        positive_duration_s(f"{MAX_DAYS + 1}d")


def test_a_whole_number_takes_both_of_its_bounds() -> None:
    """`--limit 1000` is the most the help allows: it must not be refused."""
    parse = whole_number(1, 1000, "jobs")
    assert (parse("1"), parse("1000")) == (1, 1000)
    for bad in ("0", "1001"):
        with pytest.raises(argparse.ArgumentTypeError, match="from 1 to 1000"):
            parse(bad)


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def test_token_claims_follow_the_options(
    configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ttl sets the lifetime; --user and --demo the subject; --service the role."""
    from infra.ops.__main__ import main

    assert main(["token", "--service", "--ttl", "60"]) == 0
    service = _claims(capsys.readouterr().out.strip())
    assert service["role"] == "service_role" and service["exp"] - service["iat"] == 60
    user = uuid.uuid4()
    assert main(["token", "--user", str(user), "--ttl", str(366 * 86400)]) == 0
    claims = _claims(capsys.readouterr().out.strip())
    assert (claims["sub"], claims["role"]) == (str(user), "authenticated")
    assert claims["exp"] - claims["iat"] == 366 * 86400
    assert main(["token", "--demo", "globex-admin"]) == 0
    claims = _claims(capsys.readouterr().out.strip())
    assert claims["sub"] == str(demo.demo_users()["globex-admin"])
    assert claims["exp"] - claims["iat"] == 3600
