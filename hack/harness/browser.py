"""Debian's chromium for the console's browser test (Playwright cannot download its own
browser here): installed by `make system-deps` (`python -m harness browser`) when missing."""

from __future__ import annotations

import shutil

from harness import apt
from harness.processes import ServiceError

#: Headless, no sandbox (root in a container), and nothing that reaches out to the internet.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_flags() -> list[str]:
    """The flags every test launch uses (Playwright adds a fresh --user-data-dir)."""
    return list(FLAGS)


def require_chromium() -> str:
    """Path of the system's chromium; installs the Debian package when missing (root only)."""
    found = shutil.which("chromium")
    if found is not None:
        return found
    apt.install(["chromium"])
    found = shutil.which("chromium")
    if found is None:
        raise ServiceError("chromium still missing after apt-get install")
    return found
