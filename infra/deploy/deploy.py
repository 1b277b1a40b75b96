"""Deploy one function: `python -m infra.deploy.deploy <name> [--project P] [--region R]`.

Builds the function's standalone bundle (main.py + shared/ + requirements.txt) and runs
(or, with --dry-run, prints) the gcloud commands for a gen2 HTTP function with its own
timeout, memory, instance limits, runtime identity, secrets and invokers
(see infra/deploy/functions.py). `--all` deploys every function that exists.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.deploy.bundle import FUNCTIONS_DIR, build
from infra.deploy.functions import SPECS, FunctionSpec


def commands(spec: FunctionSpec, source: Path, project: str, region: str) -> list[list[str]]:
    """The gcloud invocations that deploy `spec` from the bundle at `source`."""
    sa = f"{spec.service_account}@{project}.iam.gserviceaccount.com"
    base = f"https://{region}-{project}.cloudfunctions.net"
    env = {
        "SECRET_BACKEND": "gcp",
        "GCP_PROJECT": project,
        "GCP_LOCATION": region,
        "SERVICE_AUTH": "oidc",
        "DISPATCHER": "cloudtasks",
        "TASKS_SERVICE_ACCOUNT": f"syncq-tasks@{project}.iam.gserviceaccount.com",
        "OIDC_SERVICE_ACCOUNTS": f'["syncq-tasks@{project}.iam.gserviceaccount.com",'
        f'"syncq-scheduler@{project}.iam.gserviceaccount.com"]',
        "FUNCTIONS_BASE_URL": base,
        # The function's own URL: the audience Cloud Run requires of a token for a private
        # function, and the one Cloud Tasks and Cloud Scheduler put in theirs.
        "OIDC_AUDIENCE": f"{base}/{spec.name}",
        "DB_POOL_MAX": str(spec.pool_max),
    }
    secrets = {s.removeprefix("syncq-").replace("-", "_").upper(): s for s in spec.secrets}
    deploy = [
        "gcloud", "functions", "deploy", spec.name, "--gen2", f"--project={project}",
        f"--region={region}", "--runtime=python311", f"--source={source}",
        "--entry-point=main", "--trigger-http", f"--timeout={spec.timeout_s}s",
        f"--memory={spec.memory}", f"--cpu={spec.cpu}",
        f"--concurrency={spec.concurrency}", f"--max-instances={spec.max_instances}",
        f"--min-instances={spec.min_instances}", f"--service-account={sa}",
        "--set-env-vars=^;^" + ";".join(f"{k}={v}" for k, v in env.items()),
        *(["--set-secrets=" + ",".join(f"{k}={v}:latest" for k, v in secrets.items())]
          if secrets else []),
        "--allow-unauthenticated" if spec.public else "--no-allow-unauthenticated",
    ]  # fmt: skip
    out = [deploy]
    for invoker in spec.invokers:
        out.append([
            "gcloud", "functions", "add-invoker-policy-binding", spec.name, "--gen2",
            f"--project={project}", f"--region={region}",
            f"--member=serviceAccount:{invoker}@{project}.iam.gserviceaccount.com",
        ])  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.deploy", description=__doc__)
    parser.add_argument("names", nargs="*", help="function names (folders under functions/)")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--project", default="syncq-prod")
    parser.add_argument("--region", default="southamerica-east1")
    parser.add_argument("--out", type=Path, default=Path("build/bundles"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    existing = sorted(p.name for p in FUNCTIONS_DIR.iterdir() if (p / "main.py").exists())
    names = existing if args.all else args.names
    unknown = [n for n in names if n not in SPECS or n not in existing]
    if unknown or not names:
        parser.error(f"unknown or missing function(s): {unknown or 'none given'}")
    for name in names:
        source = build(name, args.out)
        for cmd in commands(SPECS[name], source, args.project, args.region):
            print("$", shlex.join(cmd), flush=True)
            if not args.dry_run:
                subprocess.run(cmd, check=True)  # noqa: S603
    return 0


if __name__ == "__main__":
    sys.exit(main())
