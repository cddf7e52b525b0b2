"""The console's rows and summary (pure), and the console routes on the embedded app."""

from __future__ import annotations

from agentprod.console import views
from agentprod.models import TaskRecord, TaskStatus

NOW = 1_000_000.0


def _record(
    task_id: str, status: TaskStatus, *, finished_ago: float | None, **extra: object
) -> TaskRecord:
    finished = None if finished_ago is None else NOW - finished_ago
    return TaskRecord(
        task_id=task_id,
        user_id="u",
        content="c",
        status=status,
        created_at=NOW - 100,
        finished_at=finished,
        **extra,  # type: ignore[arg-type]
    )


def test_row_takes_model_and_cost_from_a_chat_result() -> None:
    record = _record(
        "t1",
        TaskStatus.DONE,
        finished_ago=99.5,
        agent="chat",
        result={"answer": "x", "model_used": "m-fast", "cost": 0.00012},
    )
    row = views.row(record)
    assert row["model"] == "m-fast"
    assert row["cost_usd"] == 0.00012
    assert row["latency_ms"] == 500.0
    assert row["agent"] == "chat"


def test_row_of_an_unfinished_task_without_a_dict_result() -> None:
    row = views.row(_record("t2", TaskStatus.RUNNING, finished_ago=None, result=[1, 2]))
    assert row["latency_ms"] is None
    assert row["model"] is None
    assert row["cost_usd"] is None
    assert row["agent"] == "default"


def test_summary_counts_every_status_and_the_last_minute_only() -> None:
    records = [
        _record("a", TaskStatus.DONE, finished_ago=10),
        _record("b", TaskStatus.FAILED, finished_ago=30),
        _record("c", TaskStatus.DONE, finished_ago=120),  # outside the minute
        _record("d", TaskStatus.QUEUED, finished_ago=None),
    ]
    summary = views.summary(records, now=NOW)
    assert summary["by_status"] == {
        "queued": 1,
        "running": 0,
        "done": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert summary["throughput_per_minute"] == 2.0
    assert summary["p50_latency_ms"] == 90_000.0  # created 100 s ago, finished 10 s ago
    assert views.summary([], now=NOW)["p50_latency_ms"] is None


def test_a_cancelled_task_counts_as_finished() -> None:
    summary = views.summary([_record("x", TaskStatus.CANCELLED, finished_ago=5)], now=NOW)
    assert summary["by_status"]["cancelled"] == 1
    assert summary["throughput_per_minute"] == 1.0


def test_row_names_both_models_of_a_planner_result() -> None:
    record = _record(
        "p",
        TaskStatus.DONE,
        finished_ago=1,
        agent="planner",
        result={"model_used": {"planner": "m-strong", "answer": "m-fast"}, "cost": 0.5},
    )
    assert views.row(record)["model"] == "m-strong, m-fast"


def test_by_agent_sums_tokens_cost_and_cache_hits_per_agent() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    records = [
        _record(
            "c1",
            TaskStatus.DONE,
            finished_ago=1,
            agent="chat",
            result={"usage": usage, "cost": 0.25, "cached": False},
        ),
        _record(
            "c2",
            TaskStatus.DONE,
            finished_ago=1,
            agent="chat",
            result={"usage": None, "cost": 0, "cached": True},
        ),
        _record("c3", TaskStatus.FAILED, finished_ago=1, agent="chat"),
        _record("s1", TaskStatus.CANCELLED, finished_ago=1, agent="sleep", result=None),
        _record("s2", TaskStatus.RUNNING, finished_ago=None, agent="sleep"),
    ]
    chat, sleep = views.by_agent(records)
    assert chat == {
        "agent": "chat",
        "tasks": 3,
        "done": 2,
        "failed": 1,
        "cancelled": 0,
        "total_tokens": 7,
        "cost_usd": 0.25,
        "cached": 1,
        "cache_hit_rate": 0.5,
    }
    assert sleep["tasks"] == 2
    assert sleep["cancelled"] == 1
    assert sleep["cache_hit_rate"] is None  # no result said whether it was cached
    assert sleep["total_tokens"] == 0
