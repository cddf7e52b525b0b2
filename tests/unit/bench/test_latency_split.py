"""bench.latency_split's stage arithmetic (pure)."""

from __future__ import annotations

import json

import pytest

from bench.latency_split import stages

RECORD = {"created_at": "100.010", "started_at": "100.050", "finished_at": "101.600"}


def test_echo_stages_add_up_to_the_overhead() -> None:
    split = stages(100.0, RECORD, None)
    assert split["submit → record"] == pytest.approx(10)
    assert split["record → claim"] == pytest.approx(40)
    assert split["claim → done"] == pytest.approx(1550)
    assert split["overhead"] == pytest.approx(1600)
    assert "model call - delay" not in split


def test_the_model_call_leaves_the_agents_own_time() -> None:
    record = RECORD | {"result": json.dumps({"model_latency_ms": 1520.0})}
    split = stages(100.0, record, 1.5)
    assert split["claim → done"] == pytest.approx(30)
    assert split["model call - delay"] == pytest.approx(20)
    assert split["overhead"] == pytest.approx(100)
