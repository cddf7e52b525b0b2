"""Pure pieces of the model-bound benchmark (bench/compare_llm.py, bench/llm_server.py)."""

from __future__ import annotations

import math

import pytest

from bench.compare_llm import (
    AGENTPROD,
    LevelResult,
    Round,
    overheads_ms,
    paired,
    prefork_concurrency,
    slots_in_budget,
    throughput,
)
from bench.llm_server import delay_for, last_user_content, tokens_of


def test_delay_is_a_function_of_the_content_within_bounds() -> None:
    delays = [delay_for(f"task {i}", 1.0, 2.0) for i in range(2000)]
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert delay_for("task 7", 1.0, 2.0) == delays[7]
    assert 1.4 < sum(delays) / len(delays) < 1.6  # uniform: mean near the middle


def test_last_user_message_is_the_delay_key() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ]
    }
    assert last_user_content(body) == "second"
    assert last_user_content({"messages": []}) == ""


def test_the_answer_starts_with_the_delay() -> None:
    tokens = tokens_of(1.2345, 4)
    assert tokens[0] == "delay_ms=1234" or tokens[0] == "delay_ms=1235"
    assert len(tokens) == 4


def test_throughput_spans_first_start_to_last_finish() -> None:
    assert throughput([10.0, 10.5, 11.0], [11.0, 12.0, 12.0]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="one finish per start"):
        throughput([1.0], [])
    assert math.isnan(throughput([5.0], [5.0]))


def test_overhead_subtracts_the_servers_delay() -> None:
    assert overheads_ms([100.0], [101.6], [1.5]) == [pytest.approx(100.0)]


def test_prefork_children_fit_the_budget() -> None:
    assert prefork_concurrency(200.0, 40.0, 50.0) == 3
    assert prefork_concurrency(60.0, 40.0, 50.0) == 1  # never below one child
    with pytest.raises(ValueError, match="positive"):
        prefork_concurrency(100.0, 10.0, 0.0)


def test_a_pool_gets_the_slots_that_fit_the_budget_at_most_the_level() -> None:
    # 138 MB budget, 88.5 MB idle, 60 KB per busy slot: 49.5 MB / 60 KB = 844.8 slots
    assert slots_in_budget(138.0, 88.5, 60.0, 1024) == 844
    assert slots_in_budget(300.0, 88.5, 60.0, 1024) == 1024  # fits whole: the level itself
    assert slots_in_budget(100.0, 124.0, 147.0, 1024) == 1  # idle alone is over: one slot
    assert slots_in_budget(100.0, 50.0, 0.0, 64) == 64  # no growth measured: no limit from it


def _result(tasks_per_s: float) -> LevelResult:
    return LevelResult(64, 384, tasks_per_s, 42.7, 5.0, 9.0, 80.0, 97.0, 265.0, 180.0, 400.0)


def test_a_failed_phase_drops_out_of_the_paired_ratios() -> None:
    history: list[Round] = [
        {(64, AGENTPROD): _result(30.0), (64, "celery-gevent"): _result(20.0)},
        {(64, AGENTPROD): _result(32.0), (64, "celery-gevent"): None},  # Celery lost a task
        {(64, AGENTPROD): None, (64, "celery-gevent"): _result(10.0)},
    ]
    ours, theirs = paired(history, 64, "celery-gevent", "tasks_per_s")
    assert (ours, theirs) == ([30.0], [20.0])
