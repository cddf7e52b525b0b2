"""Pure pieces of the model-bound benchmark (bench/compare_llm.py, bench/llm_server.py)."""

from __future__ import annotations

import math

import pytest

from bench.compare_llm import (
    AGENTPROD,
    LevelResult,
    Round,
    best_fit,
    fits_budget,
    fitted_slots,
    overheads_ms,
    paired,
    prefork_concurrency,
    throughput,
)
from bench.llm_server import delay_for, last_user_content, tokens_of
from bench.profile_worker import gc_collections, receive_totals, redis_calls


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


def test_the_search_for_slots_that_fit_starts_at_one_and_brackets_the_budget() -> None:
    assert fitted_slots(94.0, {}, 64) == 1  # nothing measured: the smallest pool first
    assert fitted_slots(94.0, {64: 120.0}, 64) == 1  # the full pool is over
    assert fitted_slots(300.0, {64: 120.0}, 64) == 64  # it fits whole: the level itself
    # between 1 slot (81 MB) and 64 (120 MB) for 94 MB (+3 %): linear 26.6, middle 32.5 -> 29
    assert fitted_slots(94.0, {1: 81.0, 64: 120.0}, 64) == 29
    # a bracket past the level is cut to the level
    assert fitted_slots(144.0, {1: 81.0, 1024: 275.0}, 64) == 64
    assert fitted_slots(94.0, {10: 90.0, 11: 99.0}, 64) == 10  # converged: the same count again


def test_a_peak_a_little_over_the_budget_is_the_same_memory() -> None:
    assert fits_budget(96.8, 94.0)
    assert not fits_budget(97.0, 94.0)
    assert best_fit({1: 81.0, 16: 96.0, 29: 108.0}, 94.0) == 16
    assert best_fit({16: 99.0, 29: 108.0}, 94.0) == 16  # none fits: the smallest run


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


def test_the_garbage_collections_are_read_per_generation() -> None:
    exposition = (
        "# HELP python_gc_collections_total Number of times this generation was collected\n"
        'python_gc_collections_total{generation="0"} 39.0\n'
        'python_gc_collections_total{generation="2"} 3.0\n'
        'python_gc_objects_collected_total{generation="1"} 83.0\n'
    )
    assert gc_collections(exposition) == {0: 39.0, 2: 3.0}


def test_redis_calls_counts_only_the_commands_called_in_between() -> None:
    before = {"cmdstat_evalsha": {"calls": 10}, "cmdstat_ping": {"calls": 3}}
    after = {
        "cmdstat_evalsha": {"calls": 25},
        "cmdstat_ping": {"calls": 3},
        "cmdstat_hget": {"calls": 4},
    }
    assert redis_calls(before, after) == {"evalsha": 15, "hget": 4}


def test_receive_totals_reads_one_lane_of_the_worker_metrics() -> None:
    exposition = (
        'agentprod_worker_receive_seconds_count{lane="normal"} 12.0\n'
        'agentprod_worker_receive_seconds_sum{lane="normal"} 1.5\n'
        'agentprod_worker_receive_seconds_count{lane="high"} 3.0\n'
        'agentprod_worker_received_total{lane="normal"} 300.0\n'
    )
    assert receive_totals(exposition) == (12.0, 1.5, 300.0)
    assert receive_totals(exposition, "high") == (3.0, 0.0, 0.0)
