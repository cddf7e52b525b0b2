"""The HTTP API: accept a task at once (202), report its state, health, readiness, metrics.

`app.create_app` assembles it: the routers (`tasks`, `probes`), the middleware (one per module
under `middleware/`) and the error vocabulary (`errors`). The CLI's runtime builds the
`Services` it talks to. Re-exported here because they are the package's public surface.
"""

from agentprod.api.app import Services, create_app

__all__ = ["Services", "create_app"]
