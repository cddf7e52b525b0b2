"""Task events: what an agent reports while it runs, and how a stored event reads to a client.

An agent gets a `Progress` in its `AgentTask` and awaits `progress(kind, data)` at its steps
(the planner: `plan`, `subtask_started`, `subtask_finished`; the chat agent, asked to stream:
`tokens`, see `TokenEvents`); the worker appends each one to the
task's event stream next to the status changes the store's scripts append (`store_lua`).
`payload` turns a stream entry's fields into the JSON an SSE client receives.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from agentprod.models import JSON, TaskStatus

STATUS = "status"
END = "end"


class Progress(Protocol):
    """Report one step of the agent's work; never raises (a lost event fails no task)."""

    async def __call__(self, kind: str, data: dict[str, JSON]) -> None: ...


async def no_progress(kind: str, data: dict[str, JSON]) -> None:
    """The `Progress` of an agent run outside a worker (tests, the embedded tools)."""
    del kind, data


def payload(fields: dict[str, str]) -> dict[str, Any]:
    """The client's view of one stream entry: `type`, `at` (epoch seconds) and its data."""
    body: dict[str, Any] = {"type": fields.get("type", "progress")}
    raw = fields.get("data")
    if raw:
        data = orjson.loads(raw)
        if isinstance(data, dict):
            body.update(data)
        else:
            body["data"] = data
    for name in ("status", "error"):
        if fields.get(name):
            body[name] = fields[name]
    if "attempt" in fields:
        body["attempt"] = int(float(fields["attempt"] or 0))
    if "result" in fields:
        body["result"] = orjson.loads(fields["result"]) if fields["result"] else None
    body["at"] = float(fields.get("at") or 0)
    return body


def is_terminal(fields: dict[str, str]) -> bool:
    """True for the status event that ends a task (done, failed or cancelled)."""
    if fields.get("type") != STATUS:
        return False
    try:
        return TaskStatus(fields.get("status", "")).finished
    except ValueError:
        return False


class TokenEvents:
    """Streamed model text as `tokens` events, a few per second rather than one per token:
    a piece is sent once `min_chars` gathered or `every_seconds` passed since the last one,
    and `flush` sends the rest — so a long answer stays far below the stream's length bound.
    Each event carries `text` and `index` (0, 1, …): joined in order they are the answer."""

    def __init__(
        self, progress: Progress, *, min_chars: int = 64, every_seconds: float = 0.1
    ) -> None:
        self._progress = progress
        self._min_chars = min_chars
        self._every = every_seconds
        self._pending: list[str] = []
        self._size = 0
        self._sent_at = time.monotonic()
        self.index = 0

    async def add(self, text: str) -> None:
        self._pending.append(text)
        self._size += len(text)
        if self._size >= self._min_chars or time.monotonic() - self._sent_at >= self._every:
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending, self._size = [], 0
        self._sent_at = time.monotonic()
        await self._progress("tokens", {"text": text, "index": self.index})
        self.index += 1
