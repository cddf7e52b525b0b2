"""Debian packages the harness installs when missing (root only), one apt run at a time.

`make system-deps` runs its steps in parallel lanes (`harness.lanes`), and three of them may
call apt: redis-server, the node's packages, chromium. apt allows one process at a time on its
lists and on dpkg, so every call here holds one file lock first (and asks dpkg to wait too).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.processes import ServiceError, file_lock

LOCK_FILE = Path("/var/lock/agentprod-apt.lock")
DPKG_WAIT = ["-o", "DPkg::Lock::Timeout=300"]


def install(packages: Sequence[str], *, recommends: bool = False) -> None:
    """``apt-get update`` then ``apt-get install -y`` `packages`; raises with apt's output."""
    if os.geteuid() != 0:
        raise ServiceError(f"missing {' '.join(packages)}: apt-get install them (as root)")
    extra = [] if recommends else ["--no-install-recommends"]
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    with file_lock(LOCK_FILE):
        for argv in (
            ["apt-get", *DPKG_WAIT, "update", "-q"],
            ["apt-get", *DPKG_WAIT, "install", "-y", "-q", *extra, *packages],
        ):
            done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
            if done.returncode != 0:
                raise ServiceError(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}{done.stderr}")
