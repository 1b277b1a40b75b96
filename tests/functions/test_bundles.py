"""Every function's bundle (main.py + shared/ + requirements.txt) imports on its own.

Each bundle is loaded in a fresh interpreter (`python -I`, cwd outside the repository)
the way functions-framework loads it, with only the bundle folder added to sys.path.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.deploy.bundle import all_functions, build
from infra.deploy.functions import SPECS, connection_budget

LOADER = """
import pathlib, sys
bundle = pathlib.Path(sys.argv[1]).resolve()
sys.path.insert(0, str(bundle))
import functions_framework
app = functions_framework.create_app(target="main", source=str(bundle / "main.py"))
import shared, main
for module in (shared, main):
    assert pathlib.Path(module.__file__).resolve().is_relative_to(bundle), module.__file__
for outsider in ("infra", "tests", "bench"):
    try:
        __import__(outsider)
    except ImportError:
        continue
    raise SystemExit(f"{outsider} is importable from the bundle")
status = app.test_client().open("/", method="PUT").status_code
assert 400 <= status < 500, status  # the handler answers (405 envelope) without the repo
print("ok", sys.argv[1])
"""


def load(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-c", LOADER, str(bundle)],
        cwd=bundle.parent, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_every_function_bundle_imports_standalone(tmp_path: Path) -> None:
    names = all_functions()
    assert {"sync-onecode-contacts", "sync-bomcontrole", "process-integration-job"} <= set(names)
    bundles = [build(name, tmp_path) for name in names]
    for bundle in bundles:
        assert sorted(p.name for p in bundle.iterdir()) == [
            ".gcloudignore", "main.py", "requirements.txt", "shared",
        ]  # fmt: skip
        assert (bundle / "shared" / "sql" / "queue.sql").is_file()
        assert not list(bundle.rglob("__pycache__"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(load, bundles))
    failures = {
        b.name: r.stderr[-2000:] for b, r in zip(bundles, results, strict=True) if r.returncode
    }
    assert not failures, failures


def test_every_function_has_a_deploy_spec() -> None:
    missing = [name for name in all_functions() if name not in SPECS]
    assert not missing, f"add these to infra/deploy/functions.py: {missing}"
    worker = SPECS["process-integration-job"]
    assert not worker.public and worker.invokers and worker.concurrency == 1
    assert worker.timeout_s < 600  # below STALE_AFTER_S: a killed worker's job gets rescued
    assert connection_budget() < 400


def test_unknown_function_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build("no-such-function", tmp_path)
