"""Every function's bundle (main.py + shared/ + requirements.txt) imports on its own.

Each bundle is loaded in a fresh interpreter (`python -I`, cwd outside the repository)
the way functions-framework loads it, with only the bundle folder added to sys.path.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.deploy.bundle import FUNCTIONS_DIR, all_functions, build
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
        own = {p.name for p in (FUNCTIONS_DIR / bundle.name).iterdir() if p.name != "__pycache__"}
        assert sorted(p.name for p in bundle.iterdir()) == sorted(
            {".gcloudignore", "main.py", "requirements.txt", "shared", *own}
        )
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
    assert connection_budget() < 450  # README: size max_connections at 450+


def test_the_dashboard_bundle_serves_its_static_files(tmp_path: Path) -> None:
    bundle = build("integrations-dashboard", tmp_path)
    source = FUNCTIONS_DIR / "integrations-dashboard" / "app"
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert (
        files
        and sorted(
            p.relative_to(bundle / "app") for p in (bundle / "app").rglob("*") if p.is_file()
        )
        == files
    )
    served = subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-c", SERVER, str(bundle)],
        cwd=bundle.parent, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-2000:]


SERVER = """
import pathlib, sys
bundle = pathlib.Path(sys.argv[1]).resolve()
sys.path.insert(0, str(bundle))
import functions_framework
client = functions_framework.create_app(target="main", source=str(bundle / "main.py")).test_client()
index = client.get("/")
assert index.status_code == 200 and b"js/app.js" in index.data, index.status_code
assert "sha256-" in index.headers["Content-Security-Policy"]
script = client.get("/js/app.js")
assert script.status_code == 200 and script.mimetype == "text/javascript", script.mimetype
assert client.get("/../main.py").status_code == 404
assert client.get("/js/nothing.js").status_code == 404
"""


def test_unknown_function_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build("no-such-function", tmp_path)


def _installed_by_requirements() -> set[str]:
    """The distributions requirements.txt installs: its pins and what they require."""
    lines = (FUNCTIONS_DIR.parent / "requirements.txt").read_text(encoding="utf-8").splitlines()
    todo = [Requirement(text) for line in lines if (text := line.split("#")[0].strip())]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if canonicalize_name(req.name) in seen:
            continue
        seen.add(canonicalize_name(req.name))
        for text in distribution(req.name).requires or []:
            sub = Requirement(text)
            wanted = sub.marker is None or any(
                sub.marker.evaluate({"extra": extra}) for extra in {"", *req.extras}
            )
            if wanted:
                todo.append(sub)
    return seen


def test_bundles_import_only_what_requirements_txt_installs() -> None:
    """The import test above runs with the dev venv's packages importable: a module only a
    dev dependency brings (pytest, moto, playwright...) would pass it and fail deployed."""
    allowed, owners = _installed_by_requirements(), packages_distributions()
    root = FUNCTIONS_DIR.parent
    outside: dict[str, list[str]] = {}
    for path in [*(root / "shared").rglob("*.py"), *FUNCTIONS_DIR.glob("*/main.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names}:
                if top in sys.stdlib_module_names or top == "shared":
                    continue
                dists = {canonicalize_name(d) for d in owners.get(top, [])}
                if not dists & allowed:
                    outside[f"{path.relative_to(root)}: {top}"] = sorted(dists)
    assert not outside, outside
