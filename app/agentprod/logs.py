"""One log line format for the API, the worker and the operator: a JSON object per line.

    {"ts": "2026-12-01T13:20:01.123Z", "level": "WARNING", "logger": "agentprod.handling",
     "service": "agentprod-worker", "msg": "task … failed for good: …",
     "task_id": "…", "trace_id": "…", "span_id": "…"}

`task_id` comes from the `task_scope` the API and the worker open around one task's work (or
from `extra={"task_id": ...}`), `trace_id`/`span_id` from the current OpenTelemetry span when
tracing is on; keys without a value are left out. `LOG_FORMAT=text` keeps the classic
one-line text for a terminal (`agentprod dev` defaults to it).
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from agentprod import tracing

_TASK_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def task_scope(task_id: str) -> Iterator[None]:
    """Every log line inside carries `task_id` (asyncio tasks created inside inherit it)."""
    token = _TASK_ID.set(task_id)
    try:
        yield
    finally:
        _TASK_ID.reset(token)


def current_task_id() -> str | None:
    return _TASK_ID.get()


class JsonFormatter(logging.Formatter):
    """A `logging.Formatter` writing one JSON object per record."""

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "msg": record.getMessage(),
        }
        task_id = getattr(record, "task_id", None) or _TASK_ID.get()
        if task_id:
            line["task_id"] = task_id
        ids = tracing.current_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def configure(*, service: str, level: str | int = "INFO", fmt: str = "json") -> None:
    """Route the root logger (and uvicorn's, kopf's) to stderr in `fmt`; replaces handlers."""
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT={fmt!r}: choose one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(service=service) if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn and kopf install their own handlers; send theirs through the root's instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "kopf"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
