"""`make system-deps`: the harness's install steps in two lanes, each step timed.

On a fresh machine the steps took ~40 min one after another (2026-12-02): the Go builds of the
control plane ~18 min and of the collector ~2 min, the node's Debian packages and images
~8.5 min, the llama-cpp-python wheel and the model ~9 min, the rest ~3 min. The builds are
CPU-bound on 2 cores: run side by side in three lanes they took 38.8 min, against 39.5 one
after another, and each step's time said nothing. So the builds run one after another in one
lane, and the steps that mostly wait on downloads and apt (the RocketMQ jars, redis-server,
chromium, the node's packages, the skaffold schema) run beside them. A lane runs its steps in
order. Lanes share only apt, which `harness.apt` takes one at a time (the images need the
node's buildah: `images` installs it if the other lane has not yet), and the RocketMQ jars,
which `harness.rocketmq` fetches under a lock. Each step is its own
``python -m harness <step>``, so its output stays whole: it is printed when the step ends,
with how long it took.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Lanes of harness commands: the CPU-bound builds in one, the downloads and apt in the other.
#: `control-plane` builds the node's binaries too; `node-packages` and `images` are the rest of
#: `node-deps` (`images` installs the packages itself if the other lane has not yet: apt's lock
#: makes it wait for that lane's install).
LANES: tuple[tuple[str, ...], ...] = (
    ("control-plane", "llm-deps", "otelcol", "images"),
    ("node-packages", "deps", "schemas", "browser"),
)


@dataclass(frozen=True)
class StepResult:
    step: str
    returncode: int
    seconds: float
    output: str


Runner = Callable[[str], tuple[int, str]]


def run_step(step: str) -> tuple[int, str]:
    """``python -m harness <step>``: its exit code and its stdout + stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", step],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout


def run_lane(
    steps: Sequence[str], runner: Runner, report: Callable[[StepResult], None]
) -> list[StepResult]:
    """The lane's steps in order, up to the first that fails."""
    results = []
    for step in steps:
        started = time.monotonic()
        returncode, output = runner(step)
        result = StepResult(step, returncode, time.monotonic() - started, output)
        report(result)
        results.append(result)
        if returncode != 0:
            break
    return results


def run_lanes(
    lanes: Sequence[Sequence[str]], runner: Runner, report: Callable[[StepResult], None]
) -> list[StepResult]:
    """Every lane at once; the results of all steps that ran, shortest first."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        futures = [pool.submit(run_lane, lane, runner, report) for lane in lanes]
        results = [result for future in futures for result in future.result()]
    return sorted(results, key=lambda result: result.seconds)


def failed(lanes: Sequence[Sequence[str]], results: Sequence[StepResult]) -> list[str]:
    """The steps that failed or never ran because one before them in their lane failed (pure)."""
    ran = {result.step: result.returncode for result in results}
    return [step for lane in lanes for step in lane if ran.get(step, 1) != 0]


def _print(result: StepResult) -> None:
    status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"--- {result.step}: {status} in {result.seconds:.0f} s", flush=True)
    if result.output:
        print(result.output.rstrip(), flush=True)


def main() -> int:
    started = time.monotonic()
    results = run_lanes(LANES, run_step, _print)
    missing = failed(LANES, results)
    took = time.monotonic() - started
    if missing:
        print(f"system-deps: not done after {took:.0f} s: {', '.join(missing)}", flush=True)
        return 1
    steps = ", ".join(f"{result.step} {result.seconds:.0f} s" for result in results)
    print(f"system-deps: done in {took:.0f} s ({steps})", flush=True)
    return 0
