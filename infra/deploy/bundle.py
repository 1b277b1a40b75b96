"""`make bundle`: one standalone, deployable folder per function.

build/bundles/<name>/ = functions/<name>/ (its main.py and any files beside it, such as
the dashboard's static/ folder) + shared/ (with its .sql files) + requirements.txt
(runtime pins only). Nothing else from the repository goes in, so a bundle that imports
on its own (tests/functions/test_bundles.py proves it) deploys.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")


def build(name: str, out: Path) -> Path:
    """Build one function's bundle under `out` (replacing an old one); its path."""
    source = FUNCTIONS_DIR / name / "main.py"
    if not source.is_file():
        raise FileNotFoundError(f"no function {name!r} (missing {source})")
    target = (out if out.is_absolute() else ROOT / out) / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source.parent, target, ignore=_IGNORE)
    shutil.copytree(ROOT / "shared", target / "shared", ignore=_IGNORE)
    shutil.copy2(ROOT / "requirements.txt", target / "requirements.txt")
    (target / ".gcloudignore").write_text("__pycache__/\n*.pyc\n", encoding="utf-8")
    return target


def all_functions() -> list[str]:
    """Every function folder with a main.py."""
    return sorted(p.name for p in FUNCTIONS_DIR.iterdir() if (p / "main.py").is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.bundle", description=__doc__)
    parser.add_argument("names", nargs="*", help="default: every function")
    parser.add_argument("--out", type=Path, default=Path("build/bundles"))
    args = parser.parse_args(argv)
    for name in args.names or all_functions():
        print(build(name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
