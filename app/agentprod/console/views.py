"""What the console shows of a task record and of the recent tasks (pure)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agentprod.models import TaskRecord, TaskStatus

FINISHED = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED)


def row(record: TaskRecord) -> dict[str, Any]:
    """One line of the live task list: status, agent, model, latency, cost."""
    result = _result(record)
    cost = result.get("cost")
    latency_ms = None
    if record.finished_at is not None:
        latency_ms = round((record.finished_at - record.created_at) * 1000, 1)
    return {
        "task_id": record.task_id,
        "status": record.status.value,
        "agent": record.agent or "default",
        "model": _model(result),
        "latency_ms": latency_ms,
        "cost_usd": cost if isinstance(cost, int | float) else None,
        "attempts": record.attempts,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
    }


def _result(record: TaskRecord) -> dict[str, Any]:
    return record.result if isinstance(record.result, dict) else {}


def _model(result: dict[str, Any]) -> str | None:
    """The model that answered; the planner's `{"planner": m1, "answer": m2}` reads `m1, m2`."""
    model = result.get("model_used") or result.get("model")
    if isinstance(model, dict):
        names = [name for name in dict.fromkeys(model.values()) if isinstance(name, str)]
        return ", ".join(names) or None
    return model if isinstance(model, str) else None


def _tokens(result: dict[str, Any]) -> int:
    usage = result.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) else 0


def by_agent(records: list[TaskRecord]) -> list[dict[str, Any]]:
    """Per agent over `records`: tasks, how they ended, tokens, cost and the share of model
    answers that came from the response cache (of the results that say either way)."""
    agents: dict[str, dict[str, Any]] = {}
    for record in records:
        name = record.agent or "default"
        entry = agents.setdefault(
            name,
            {
                "agent": name,
                "tasks": 0,
                "done": 0,
                "failed": 0,
                "cancelled": 0,
                "total_tokens": 0,
                "cost_usd": 0.0,
                "cached": 0,
                "cache_known": 0,
            },
        )
        entry["tasks"] += 1
        if record.status in FINISHED:
            entry[record.status.value] += 1
        result = _result(record)
        entry["total_tokens"] += _tokens(result)
        cost = result.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            entry["cost_usd"] = round(entry["cost_usd"] + cost, 8)
        if isinstance(result.get("cached"), bool):
            entry["cache_known"] += 1
            entry["cached"] += int(result["cached"])
    out = []
    for entry in sorted(agents.values(), key=lambda e: (-e["tasks"], e["agent"])):
        known = entry.pop("cache_known")
        entry["cache_hit_rate"] = round(entry["cached"] / known, 4) if known else None
        out.append(entry)
    return out


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
