"""Pure summaries of the peer benchmarks: per-round ratios and spreads (bench/compare_celery.py),
per-task figures of a workload, and vegeta's encoded results (bench/load_api.py)."""

from __future__ import annotations

import base64
import json
import math

import pytest

from bench.compare_celery import Spread, ratios, spread, summarize
from bench.load_api import read_results


def test_spread_is_median_min_max() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == Spread(median=2.5, low=1.0, high=10.0)
    assert str(spread([1.0, 2.0, 4.0])) == "2.00 [1.00..4.00]"


def test_spread_of_nothing_is_nan() -> None:
    assert all(math.isnan(v) for v in (spread([]).median, spread([]).low, spread([]).high))


def test_ratios_pair_rounds_by_index() -> None:
    assert ratios([100.0, 300.0], [200.0, 100.0]) == [0.5, 3.0]
    assert math.isnan(ratios([1.0], [0.0])[0])
    with pytest.raises(ValueError, match="rounds differ"):
        ratios([1.0, 2.0], [1.0])


def test_summarize_measures_from_first_submit() -> None:
    submits = [100.0, 100.5, 101.0, 101.5]
    finishes = [100.1, 100.7, 101.3, 102.0]  # latencies 100, 200, 300, 500 ms
    result = summarize(submits, finishes, submit_end=102.0)
    assert result.tasks == 4
    assert result.submit_rate == pytest.approx(4 / 2.0)
    assert result.done_after == pytest.approx(2.0)
    assert result.complete_rate == pytest.approx(4 / 2.0)
    assert 200 <= result.p50_ms <= 300
    assert result.p99_ms == pytest.approx(500, abs=10)


def test_summarize_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="one completion time per submit"):
        summarize([1.0, 2.0], [3.0], submit_end=2.0)


def test_read_results_counts_non_202_and_transport_errors() -> None:
    down = base64.b64encode(b'{"detail": "send timed out", "dependency": "rocketmq"}').decode()
    lines = [
        json.dumps({"code": 202, "error": "", "latency": 2_500_000}),
        json.dumps({"code": 202, "error": "", "latency": 1_000_000}),
        json.dumps({"code": 503, "error": "", "latency": 900_000, "body": down}),
        json.dumps({"code": 503, "error": "", "latency": 800_000, "body": down}),
        json.dumps({"code": 500, "error": "", "latency": 800_000, "body": ""}),
        json.dumps(
            {"code": 0, "error": 'Post "http://x/tasks": i/o timeout', "latency": 10_000_000_000}
        ),
        json.dumps({"code": 0, "error": "read tcp a->b: read: connection reset by peer"}),
        "",
    ]
    latencies, errors = read_results(lines)
    assert latencies == [2.5, 1.0]
    assert errors == {
        "HTTP 503 (rocketmq)": 2,
        "HTTP 500": 1,
        "i/o timeout": 1,
        "connection reset by peer": 1,
    }
