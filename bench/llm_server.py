"""A loopback OpenAI-compatible server that only waits and streams (`bench.compare_llm`).

It measures the platform, not a model: ``POST /v1/chat/completions`` answers after a delay that
is a pure function of the last user message (uniform in ``[--min-seconds, --max-seconds]``, so
both systems of a benchmark get the same delays for the same task contents), with
``--tokens`` tokens. With ``"stream": true`` the tokens go out as server-sent events spread over
the delay (``data: {chunk}`` … ``data: [DONE]``); without it the JSON answer is sent when the
delay is over. The answer text starts with ``delay_ms=<n>`` so a client can subtract the
server's own latency per task. ``GET /v1/models`` lists the one model; ``GET /healthz`` is
for readiness.

    python -m bench.llm_server --port 18090 [--min-seconds 1 --max-seconds 2 --tokens 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web

MODEL = "bench-model"


def delay_for(content: str, low: float, high: float) -> float:
    """The server latency of a request whose last user message is `content` (pure)."""
    digest = hashlib.blake2b(content.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return low + (high - low) * fraction


def last_user_content(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def tokens_of(delay: float, count: int) -> list[str]:
    """The answer's tokens; the first one carries the delay."""
    return [f"delay_ms={round(delay * 1000)}"] + [f" tok{i}" for i in range(1, count)]


class Server:
    def __init__(self, *, low: float, high: float, tokens: int) -> None:
        self.low, self.high, self.tokens = low, high, tokens
        self.requests = 0

    async def completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        if not isinstance(body, dict) or not body.get("messages"):
            return web.json_response({"error": {"message": "messages: required"}}, status=400)
        self.requests += 1
        delay = delay_for(last_user_content(body), self.low, self.high)
        tokens = tokens_of(delay, self.tokens)
        ident = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        created = int(time.time())
        usage = {
            "prompt_tokens": 20,
            "completion_tokens": len(tokens),
            "total_tokens": 20 + len(tokens),
        }
        if not body.get("stream"):
            await asyncio.sleep(delay)
            return web.json_response(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(tokens)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        step = delay / len(tokens)
        for i, token in enumerate(tokens):
            await asyncio.sleep(step)
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": token} | ({"role": "assistant"} if i == 0 else {}),
                        "finish_reason": "stop" if i == len(tokens) - 1 else None,
                    }
                ],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}
        )

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "requests": self.requests})


def application(server: Server) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.completions)
    app.router.add_get("/v1/models", server.models)
    app.router.add_get("/healthz", server.health)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args(argv)
    if not 0 <= args.min_seconds <= args.max_seconds:
        parser.error("--min-seconds must be between 0 and --max-seconds")
    if args.tokens < 1:
        parser.error("--tokens must be at least 1")
    if not args.host.startswith("127."):
        parser.error("--host must be a loopback address (127.0.0.0/8)")
    server = Server(low=args.min_seconds, high=args.max_seconds, tokens=args.tokens)
    import uvloop

    uvloop.install()
    web.run_app(application(server), host=args.host, port=args.port, print=None, backlog=4096)


if __name__ == "__main__":
    main()
