"""`make system-deps`'s lanes (hack/harness/lanes.py) with a recording runner, no installs."""

from __future__ import annotations

import threading

from harness.lanes import LANES, StepResult, failed, run_lanes


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
    assert LANES[1][0] == "node-packages"  # apt's share of the images, early
