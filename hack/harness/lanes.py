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

`make test` runs it beside lint, types and the tests (`beside-installs`): at nice 19 the builds
take the CPU the tests leave idle, and the tests are ordered so the ones that need no build run
first (`rank_of_test_file`), each waiting on a build's lock only when it needs that build.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Lanes of harness commands: the CPU-bound builds in one, the downloads and apt in the other.
#: `control-plane` builds the node's binaries too; `node-packages` and `images` are the rest of
#: `node-deps` (`images` installs the packages itself if the other lane has not yet: apt's lock
#: makes it wait for that lane's install).
LANES: tuple[tuple[str, ...], ...] = (
    ("control-plane", "llm-deps", "otelcol", "images"),
    ("deps", "node-packages", "schemas", "browser"),
)
BUILDS = LANES[0]

#: The build each test file or folder waits for; every other test needs only Redis and the
#: RocketMQ jars (`deps`, the first download) or a quick apt install. `make test` runs the
#: tests in the order of the builds, those needing none first, so they run while the builds do.
TEST_NEEDS: dict[str, str] = {
    "tests/integration/test_crd_validation.py": "control-plane",
    "tests/integration/test_status_conditions.py": "control-plane",
    "tests/chart": "control-plane",
    "tests/e2e": "control-plane",
    "tests/integration/test_chat_real_model.py": "llm-deps",
    "tests/integration/test_llm_faults.py": "llm-deps",
    "tests/integration/test_tracing.py": "otelcol",
    "tests/e2e/test_node.py": "images",
}


@dataclass(frozen=True)
class StepResult:
    step: str
    returncode: int
    seconds: float
    output: str


Runner = Callable[[str], tuple[int, str]]


def run_step(step: str) -> tuple[int, str]:
    """``python -m harness <step>``: its exit code and its stdout + stderr."""
    hack = str(Path(__file__).resolve().parent.parent)  # importable from any caller's cwd
    path = os.environ.get("PYTHONPATH")
    done = subprocess.run(
        [sys.executable, "-m", "harness", step],
        env=os.environ | {"PYTHONPATH": f"{hack}{os.pathsep}{path}" if path else hack},
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


def needed_build(path: str) -> str | None:
    """The build a test file waits for (pure): the longest matching entry of TEST_NEEDS."""
    matches = [
        prefix
        for prefix in TEST_NEEDS
        if path == prefix or path.startswith(prefix.rstrip("/") + "/")
    ]
    return TEST_NEEDS[max(matches, key=len)] if matches else None


def rank_of_test_file(path: str) -> int:
    """Where a test file runs in `make test` (pure): 0 when it needs no build, else 1 + its
    build's place in the build lane."""
    build = needed_build(path)
    return 0 if build is None else 1 + BUILDS.index(build)


def outcome(command_codes: Sequence[int], installs_code: int) -> int:
    """The exit code of `beside-installs` (pure): the first command that failed decides; when
    every command passed, a failed install still fails the run."""
    for code in command_codes:
        if code != 0:
            return code
    return 0 if installs_code == 0 else 1


def run_beside_installs(commands: Sequence[str], *, log: Path) -> int:
    """`make system-deps` in the background at the lowest CPU priority (nice 19; I/O: the
    lowest best-effort level), while the shell `commands` run one after another in the
    foreground, up to the first that fails.

    The foreground waits for what it needs through the build locks (the control plane, the
    wheel, the collector, the images): a test that needs a build still in progress blocks until
    it is done, and one that needs none runs meanwhile. The installs are waited for in every
    case, never cut short: their caches must not be left half-written. Their output, step by
    step, is printed at the end (and is in ``log`` meanwhile).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as out:
        installs = subprocess.Popen(
            ["nice", "-n", "19", "ionice", "-c", "2", "-n", "7", sys.executable, "-m",
             "harness", "system-deps"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    print(f"system-deps: running beside the tests at nice 19, log {log}", flush=True)
    codes = []
    for command in commands:
        code = subprocess.run(command, shell=True, check=False).returncode
        codes.append(code)
        if code != 0:
            break
    if installs.poll() is None:
        print("system-deps: waiting for the installs to finish", flush=True)
    installs_code = installs.wait()
    print(log.read_text().rstrip(), flush=True)
    print(
        f"beside-installs: {len(codes)} of {len(commands)} command(s) run, exit codes {codes}; "
        f"system-deps exit {installs_code}; {time.monotonic() - started:.0f} s in all",
        flush=True,
    )
    return outcome(codes, installs_code)


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
