"""A small OpenAI-compatible test server that injects faults (the tests' own), on 127.0.0.1 or
an address of the tests' own node bridge (pods reach it there).

It answers `POST /v1/chat/completions` and `GET /v1/models`. What it does is chosen by a marker
in the last user message, so one server serves every test and each test owns its prompts:

- `[429xN:S]` / `[503xN:S]`: the first N calls for this prompt answer 429/503 with
  `Retry-After: S`, later ones succeed;
- `[500]`: always 500; `[400]`: always 400 (not retryable);
- `[slow:S]`: answer after S seconds (the client's timeout should fire first);
- `[badplan]`: a forced tool call gets arguments that are not a plan;
- anything else: `echo: <message>` with usage — streamed word by word (SSE chunks, 20 ms
  apart, usage in the last chunk) when the request asks for `stream`.

A server made with `capacity=N` is a provider that serves at most N calls at once: a call
beyond that answers 429 with `Retry-After: 1` (counted in `refusals`), as a provider at its
rate limit does, however many workers ask.

`calls(prompt)` gives the times of the calls made for a prompt, so tests can check that a
retry honoured Retry-After and that nothing was called twice.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FAULT = re.compile(r"\[(429|503)x(\d+):(\d+(?:\.\d+)?)\]")
_SLOW = re.compile(r"\[slow:(\d+(?:\.\d+)?)\]")


class FaultyModelServer:
    def __init__(self, *, host: str = "127.0.0.1", capacity: int | None = None) -> None:
        self._calls: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._capacity = capacity
        self._serving = 0
        self.refusals = 0  # calls refused for the capacity
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake-model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not owner._admit():
                    self._send(429, _error("rate limit reached"), {"Retry-After": "1"})
                    return
                try:
                    status, headers, answer, delay = owner._respond(body)
                    if delay:
                        time.sleep(delay)
                    if status == 200 and body.get("stream"):
                        self._stream(answer)
                        return
                    self._send(status, answer, headers)
                finally:
                    owner._release()

            def _stream(self, answer: dict[str, Any]) -> None:
                text = str(answer["choices"][0]["message"].get("content") or "")
                words = re.findall(r"\S+\s*", text) or [""]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for n, word in enumerate(words):
                    last = n == len(words) - 1
                    self._chunk(answer, {"content": word}, "stop" if last else None)
                    time.sleep(0.02)
                self._chunk(answer, None, None, usage=answer["usage"])
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _chunk(
                self,
                answer: dict[str, Any],
                delta: dict[str, Any] | None,
                finish: str | None,
                usage: dict[str, Any] | None = None,
            ) -> None:
                choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta else []
                chunk = {
                    "id": answer["id"],
                    "object": "chat.completion.chunk",
                    "created": answer["created"],
                    "model": answer["model"],
                    "choices": choices,
                    "usage": usage,
                }
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()

            def _send(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _admit(self) -> bool:
        with self._lock:
            if self._capacity is not None and self._serving >= self._capacity:
                self.refusals += 1
                return False
            self._serving += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self._serving -= 1

    def calls(self, marker: str) -> list[float]:
        """Wall-clock times of the calls whose last user message contains `marker`."""
        with self._lock:
            return [t for prompt, times in self._calls.items() if marker in prompt for t in times]

    def _respond(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any], float]:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        prompt = str(users[0].get("content") or "") if users else ""
        with self._lock:
            times = self._calls.setdefault(prompt, [])
            times.append(time.time())
            count = len(times)
        fault = _FAULT.search(prompt)
        if fault and count <= int(fault.group(2)):
            status = int(fault.group(1))
            return status, {"Retry-After": fault.group(3)}, _error("slow down"), 0.0
        if "[500]" in prompt:
            return 500, {}, _error("internal error"), 0.0
        if "[400]" in prompt:
            return 400, {}, _error("context length exceeded"), 0.0
        slow = _SLOW.search(prompt)
        delay = float(slow.group(1)) if slow else 0.0
        model = str(body.get("model") or "fake-model")
        if body.get("tool_choice"):
            arguments = "no plan here" if "[badplan]" in prompt else json.dumps(_plan())
            return 200, {}, _completion(model, "", arguments), delay
        return 200, {}, _completion(model, f"echo: {prompt}", None), delay


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error"}}


def _plan() -> dict[str, Any]:
    return {
        "subtasks": [
            {
                "id": 1,
                "description": "multiply",
                "tool": "calculate",
                "args": {"expression": "25*4"},
            }
        ]
    }


def _completion(model: str, content: str, arguments: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if arguments is not None:
        message["tool_calls"] = [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "submit_plan", "arguments": arguments},
            }
        ]
    return {
        "id": "fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
    }
