"""What the deploy commands give each function, read from the commands themselves."""

from __future__ import annotations

from pathlib import Path

from infra.deploy.deploy import commands
from infra.deploy.functions import SPECS

PROJECT, REGION = "p", "r"
BASE = f"https://{REGION}-{PROJECT}.cloudfunctions.net"


def deployed(name: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The function's environment, its secrets and the whole deploy command."""
    command = commands(SPECS[name], Path("/bundle"), PROJECT, REGION)[0]
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for arg in command:
        if arg.startswith("--set-env-vars=^;^"):
            env.update(kv.split("=", 1) for kv in arg.removeprefix("--set-env-vars=^;^").split(";"))
        elif arg.startswith("--set-secrets="):
            pairs = arg.removeprefix("--set-secrets=").split(",")
            secrets.update(kv.split("=", 1) for kv in pairs)
    return env, secrets, command


def test_each_function_expects_its_own_url_as_the_oidc_audience() -> None:
    """Cloud Run takes a token for a private function only with the function's URL as its
    audience (the bare host was refused: no sweep, no wake-up would ever have run)."""
    for name in SPECS:
        env, _, _ = deployed(name)
        assert env["OIDC_AUDIENCE"] == f"{BASE}/{name}"
        assert env["FUNCTIONS_BASE_URL"] == BASE
    scheduler = (Path(__file__).parents[2] / "infra" / "deploy" / "scheduler.sh").read_text()
    assert '--oidc-token-audience="${BASE}/process-integration-job"' in scheduler
