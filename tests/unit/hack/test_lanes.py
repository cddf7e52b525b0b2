"""`make system-deps`'s lanes (hack/harness/lanes.py) with a recording runner, no installs."""

from __future__ import annotations

import threading
from pathlib import Path

from harness.lanes import (
    BUILDS,
    LANES,
    TEST_NEEDS,
    StepResult,
    failed,
    needed_build,
    outcome,
    rank_of_test_file,
    run_lanes,
)


class Recorder:
    """Runs nothing; records the order steps were asked for and fails the named ones."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, step: str) -> tuple[int, str]:
        with self._lock:
            self.asked.append(step)
        return (2, f"{step} broke") if step in self.failing else (0, f"{step} ok")


def test_every_step_runs_once_and_in_its_lanes_order() -> None:
    runner = Recorder()
    reported: list[StepResult] = []
    results = run_lanes(LANES, runner, reported.append)
    assert sorted(runner.asked) == sorted(step for lane in LANES for step in lane)
    for lane in LANES:
        assert [step for step in runner.asked if step in lane] == list(lane)
    assert {r.step for r in results} == {r.step for r in reported}
    assert failed(LANES, results) == []


def test_a_failed_step_stops_its_lane_only() -> None:
    lanes = (("build", "images"), ("wheel", "collector"))
    runner = Recorder(failing=frozenset({"build"}))
    results = run_lanes(lanes, runner, lambda _: None)
    assert "images" not in runner.asked  # it needs what failed before it
    assert {"wheel", "collector"} <= set(runner.asked)
    assert failed(lanes, results) == ["build", "images"]
    assert [r.output for r in results if r.step == "build"] == ["build broke"]


def test_the_builds_run_one_at_a_time() -> None:
    steps = [step for lane in LANES for step in lane]
    assert len(steps) == len(set(steps))  # e.g. the binaries are built by one lane only
    assert "node-deps" not in steps  # it would build the binaries again, beside control-plane
    builds = {"control-plane", "llm-deps", "otelcol", "images"}
    assert [lane for lane in LANES if builds & set(lane)] == [LANES[0]]
    assert LANES[1][0] == "deps"  # redis-server and the jars: the first tests need them
    assert LANES[1].index("node-packages") == 1  # apt's share of the images, early


def test_tests_run_in_the_order_of_the_builds_they_need() -> None:
    assert rank_of_test_file("tests/unit/test_store.py") == 0
    assert rank_of_test_file("tests/integration/test_api.py") == 0
    assert needed_build("tests/integration/test_crd_validation.py") == "control-plane"
    assert needed_build("tests/e2e/test_chart.py") == "control-plane"
    assert needed_build("tests/e2e/test_node.py") == "images"  # the longer entry wins
    assert needed_build("tests/e2e2/test_x.py") is None  # a folder prefix, not a string one
    ranks = [rank_of_test_file(path) for path in TEST_NEEDS]
    assert all(rank >= 1 for rank in ranks)
    assert rank_of_test_file("tests/e2e/test_node.py") > rank_of_test_file("tests/e2e/x.py")


def test_every_entry_of_test_needs_is_a_real_path_and_a_build() -> None:
    root = Path(__file__).resolve().parents[3]
    for path, build in TEST_NEEDS.items():
        assert (root / path).exists(), path
        assert build in BUILDS, build


def test_the_first_failed_command_decides_then_the_installs() -> None:
    assert outcome([0, 0], 0) == 0
    assert outcome([0, 2], 0) == 2
    assert outcome([3], 1) == 3
    assert outcome([0, 0], 1) == 1  # the tests passed but an install failed
    assert outcome([], 0) == 0
