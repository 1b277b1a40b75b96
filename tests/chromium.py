"""Debian's Chromium for the browser tests: installed when /usr/bin/chromium is missing.

`make browser` (a prerequisite of `make test`) and the browser tests both call `ensure()`;
on a machine where it cannot be installed (not root, no apt), the tests say so and skip,
except under CI, where they fail. Playwright drives this Chromium (`executable_path`); it
never downloads a browser of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
_APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def ensure() -> str | None:
    """None once Chromium is there, else why it could not be installed."""
    if CHROMIUM.exists():
        return None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return f"{CHROMIUM} is missing; install Debian's chromium (make browser, as root)"
    for args in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(args, env=_APT_ENV, capture_output=True, timeout=900, check=False)  # noqa: S603
        if done.returncode != 0:
            return f"{' '.join(args[1:])} failed: {done.stderr.decode(errors='replace')[-500:]}"
    return None if CHROMIUM.exists() else f"{CHROMIUM} is still missing after apt-get install"


if __name__ == "__main__":
    problem = ensure()
    if problem:
        raise SystemExit(problem)
    print(f"{CHROMIUM}: ready")
