"""The HTTP API: accept a task at once (202), report its state, health, readiness, metrics.

`app.create_app` assembles it: the routers (`tasks`, `probes`), the middleware (one per module
under `middleware/`) and the error vocabulary (`errors`). The CLI's runtime builds the
`Services` it talks to. Re-exported here because they are the package's public surface, and
loaded on first use: a worker that imports `api.services` does not load FastAPI (~10 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentprod.api.app import create_app
    from agentprod.api.services import Services

__all__ = ["Services", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from agentprod.api.app import create_app

        return create_app
    if name == "Services":
        from agentprod.api.services import Services

        return Services
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
