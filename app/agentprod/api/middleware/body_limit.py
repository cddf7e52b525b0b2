"""Refuse a request body over the limit with 413, whether declared or streamed (chunked).

A declared `Content-Length` above the limit is refused before the app runs. A body without one
(chunked) is counted while the app reads it, chunk by chunk, and refused the moment it passes
the limit — never buffered whole. Before the 413 goes out, the rest of the body is read and
thrown away (a lingering close, bounded in bytes and seconds): a server that answers and
closes while the client is still sending makes the client's kernel see a reset, and the client
never reads the 413.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentprod.api import errors

#: How much of an oversized body is read and dropped, at most, before answering 413.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_MAX_SECONDS = 5.0


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self._limit:
            if headers.get(b"expect", b"").lower() != b"100-continue":
                await _drain(receive)  # the client sends the body anyway: read it first
            refusal = errors.answer(413, "body", self._message(int(declared)), "too_large")
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._limit:
                    if message.get("more_body", False):
                        await _drain(receive)
                    # FastAPI passes HTTPException through its body parsing; the error
                    # handlers answer it as our JSON 413.
                    raise HTTPException(413, self._message(received, streamed=True))
            return message

        await self._app(scope, counted, send)

    def _message(self, size: int, *, streamed: bool = False) -> str:
        amount = f"over {size}" if streamed else str(size)
        return f"request body is {amount} bytes; the limit is {self._limit}"


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of the body, within the bounds above."""
    dropped = 0
    try:
        async with asyncio.timeout(DRAIN_MAX_SECONDS):
            while dropped < DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return
