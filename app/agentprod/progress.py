"""Task events: what an agent reports while it runs, and how a stored event reads to a client.

An agent gets a `Progress` in its `AgentTask` and awaits `progress(kind, data)` at its steps
(the planner: `plan`, `subtask_started`, `subtask_finished`); the worker appends each one to the
task's event stream next to the status changes the store's scripts append (`store_lua`).
`payload` turns a stream entry's fields into the JSON an SSE client receives.
"""

from __future__ import annotations

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
