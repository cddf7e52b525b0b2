"""Refuse a declared body above the limit with 413 before reading it."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from agentprod.api import errors


class BodyLimit:
    """413 for a `Content-Length` above `limit`, answered before the body is read."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self._limit:
                    size = int(value)
                    message = f"request body is {size} bytes; the limit is {self._limit}"
                    refusal = errors.answer(413, "body", message, "too_large")
                    await refusal(scope, receive, send)
                    return
        await self._app(scope, receive, send)
