"""Where the harness keeps things: big reusable downloads vs. per-checkout runtime state."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """The checkout this harness belongs to (two levels above this file)."""
    return REPO_ROOT


def cache_dir() -> Path:
    """Big downloads reused across clones: ``$AGENTPROD_CACHE`` or ``~/.cache/agentprod``."""
    env = os.environ.get("AGENTPROD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "agentprod"


def state_dir() -> Path:
    """Runtime state of this checkout (data, logs, pidfiles): ``<repo>/.cache``, git-ignored."""
    return REPO_ROOT / ".cache"
