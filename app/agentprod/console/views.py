"""What the console shows of a task record and of the recent tasks (pure)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agentprod.models import TaskRecord, TaskStatus

FINISHED = (TaskStatus.DONE, TaskStatus.FAILED)


def row(record: TaskRecord) -> dict[str, Any]:
    """One line of the live task list: status, agent, model, latency, cost."""
    result = record.result if isinstance(record.result, dict) else {}
    model = result.get("model_used") or result.get("model")
    cost = result.get("cost")
    latency_ms = None
    if record.finished_at is not None:
        latency_ms = round((record.finished_at - record.created_at) * 1000, 1)
    return {
        "task_id": record.task_id,
        "status": record.status.value,
        "agent": record.agent or "default",
        "model": model if isinstance(model, str) else None,
        "latency_ms": latency_ms,
        "cost_usd": cost if isinstance(cost, int | float) else None,
        "attempts": record.attempts,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
    }


def detail(record: TaskRecord) -> dict[str, Any]:
    return row(record) | {
        "user_id": record.user_id,
        "content": record.content,
        "metadata": record.metadata,
        "result": record.result,
        "error": record.error,
        "started_at": record.started_at,
    }


def summary(
    records: list[TaskRecord], *, now: float, window_seconds: float = 60.0
) -> dict[str, Any]:
    """Counts by status and throughput (tasks finished per minute over the last `window`)."""
    counts = Counter(record.status.value for record in records)
    finished = [
        r
        for r in records
        if r.status in FINISHED
        and r.finished_at is not None
        and now - r.finished_at <= window_seconds
    ]
    latencies = sorted(
        (r.finished_at - r.created_at) * 1000 for r in finished if r.finished_at is not None
    )
    return {
        "by_status": {status.value: counts.get(status.value, 0) for status in TaskStatus},
        "throughput_per_minute": round(len(finished) * 60.0 / window_seconds, 1),
        "p50_latency_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "window_seconds": window_seconds,
        "counted": len(records),
    }
