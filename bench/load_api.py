"""API latency under open-loop load: `vegeta` fires ``POST /tasks`` at fixed rates (real stack).

vegeta (built once from the Go module proxy, `harness.vegeta`) sends at a constant rate
whatever the answers do and spawns as many workers as the rate needs (``-max-workers`` left
unlimited), so a slow server cannot slow the offered load down (open loop, no coordinated
omission as long as vegeta keeps its rate — the "sent/s" column checks that, and "gen CPU" is
vegeta's own CPU use, in % of one core). Each rate gets fresh `agentprod api` and `agentprod
worker` (echo, default concurrency) processes on a new topic, a short warm-up, then the attack.
An error is any answer other than ``202``, or no answer (a 10 s timeout, a reset connection).

    python -m bench.load_api [--rates 200,500,1000] [--seconds 60] [--quick] [--profile DIR]

``--profile DIR`` records the API with py-spy during each attack (raw folded stacks,
``DIR/api-<rate>.folded``), at the cost of the sampler's own CPU on the same cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from harness.vegeta import ensure_vegeta

from bench.stack import Stack, percentile, py_spy, real_stack

MB = 1024 * 1024
WARMUP_RATE, WARMUP_SECONDS = 50, 3
TIMEOUT = "10s"


@dataclass(frozen=True)
class LoadResult:
    rate: float
    sent: int
    sent_rate: float  # requests/s vegeta actually sent
    errors: int
    error_kinds: dict[str, int]
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    generator_cpu: float  # % of one core
    cpu_ms: dict[str, float]  # CPU per request sent: api, worker, proxy, redis
    machine_busy: float  # % of all cores busy during the attack
    api_idle_mb: float
    api_peak_mb: float
    worker_idle_mb: float


def read_results(lines: Sequence[str]) -> tuple[list[float], Counter[str]]:
    """Latencies (ms) of the 202 answers and the errors by kind (status code or transport
    error), from ``vegeta encode --to json`` lines."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    for line in lines:
        if not line.strip():
            continue
        hit = json.loads(line)
        if hit["code"] == 202 and not hit["error"]:
            latencies.append(hit["latency"] / 1e6)
        elif hit["code"]:
            errors[f"HTTP {hit['code']}{_dependency(hit.get('body'))}"] += 1
        else:  # no answer: keep the cause, drop vegeta's request/address prefixes
            errors[str(hit["error"]).rpartition(": ")[2] or "no answer"] += 1
    return latencies, errors


def _dependency(body: object) -> str:
    """`` (rocketmq)`` for a 503 body naming the dependency that was down, else ``""``."""
    try:
        answer = json.loads(base64.b64decode(str(body or "")))
    except ValueError:
        return ""
    return (
        f" ({answer['dependency']})" if isinstance(answer, dict) and "dependency" in answer else ""
    )


def _targets(path: Path, url: str) -> Path:
    body = json.dumps({"user_id": "bench", "content": "open-loop load", "agent": "echo"})
    target = {
        "method": "POST",
        "url": f"{url}/tasks",
        "body": base64.b64encode(body.encode()).decode(),
        "header": {"Content-Type": ["application/json"]},
    }
    path.write_text(json.dumps(target) + "\n")
    return path


def _attack(
    vegeta: Path, targets: Path, out: Path, *, rate: float, seconds: float, api: psutil.Process
) -> tuple[float, float]:
    """Run one attack into ``out``; returns (vegeta CPU % of a core, API peak RSS in MB)."""
    argv = [
        str(vegeta), "attack", "-format=json", f"-targets={targets}", f"-rate={rate:g}/1s",
        f"-duration={seconds:g}s", f"-timeout={TIMEOUT}", f"-output={out}",
    ]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(argv, stderr=subprocess.PIPE)
    generator = psutil.Process(process.pid)
    cpu = 0.0
    peak = api.memory_info().rss
    while process.poll() is None:
        try:
            times = generator.cpu_times()
            cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        peak = max(peak, api.memory_info().rss)
        time.sleep(0.2)
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"vegeta attack failed ({process.returncode}): {stderr.decode()}")
    return 100 * cpu / (time.monotonic() - started), peak / MB


def _running(pid: int | None, what: str) -> int:
    if pid is None:
        raise RuntimeError(f"{what} is not running")
    return pid


def _cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}


def _busy_share(start: Any, end: Any) -> float:
    """% of the machine's cores not idle between two `psutil.cpu_times()` readings."""
    idle = (end.idle + end.iowait) - (start.idle + start.iowait)
    total = sum(end) - sum(start)
    return 100 * (1 - idle / total) if total > 0 else float("nan")


def _report(vegeta: Path, out: Path) -> tuple[list[str], dict[str, object]]:
    encoded = subprocess.run(
        [str(vegeta), "encode", "--to", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    summary = subprocess.run(
        [str(vegeta), "report", "-type=json", str(out)], capture_output=True, text=True, check=True
    ).stdout
    return encoded, json.loads(summary)


def run_rate(
    stack: Stack, vegeta: Path, *, rate: float, seconds: float, profile: Path | None = None
) -> LoadResult:
    topic, group = stack.pipeline()
    api = stack.launch("api", stack.env(topic, group))
    worker = stack.launch("worker", stack.env(topic, group, AGENT="echo"))
    try:
        targets = _targets(stack.home / "targets.json", api.url)
        warmup = stack.home / "warmup.bin"
        api_proc = psutil.Process(api.process.pid)
        _attack(vegeta, targets, warmup, rate=WARMUP_RATE, seconds=WARMUP_SECONDS, api=api_proc)
        time.sleep(2)
        api_idle = api_proc.memory_info().rss / MB
        worker_idle = psutil.Process(worker.process.pid).memory_info().rss / MB
        out = stack.home / f"attack-{rate:g}.bin"
        spy = None if profile is None else py_spy(api.process.pid, profile / f"api-{rate:g}.folded")
        parts = {
            "api": api_proc,
            "worker": psutil.Process(worker.process.pid),
            "proxy": psutil.Process(_running(stack.mq.pids()["proxy"], "the RocketMQ proxy")),
            "redis": psutil.Process(_running(stack.redis.pid, "redis-server")),
        }
        before, machine = _cpu_seconds(parts), psutil.cpu_times()
        cpu, api_peak = _attack(vegeta, targets, out, rate=rate, seconds=seconds, api=api_proc)
        used = {name: spent - before[name] for name, spent in _cpu_seconds(parts).items()}
        busy = _busy_share(machine, psutil.cpu_times())
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        encoded, summary = _report(vegeta, out)
    finally:
        stack.stop_processes()
    latencies, errors = read_results(encoded)
    requests = int(str(summary["requests"]))
    return LoadResult(
        rate=rate,
        sent=requests,
        sent_rate=float(str(summary["rate"])),
        errors=sum(errors.values()),
        error_kinds=dict(errors.most_common()),
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        p999_ms=percentile(latencies, 0.999),
        max_ms=max(latencies, default=float("nan")),
        generator_cpu=cpu,
        cpu_ms={name: 1000 * spent / max(requests, 1) for name, spent in used.items()},
        machine_busy=busy,
        api_idle_mb=api_idle,
        api_peak_mb=api_peak,
        worker_idle_mb=worker_idle,
    )


def _print_header() -> None:
    print(
        f"{'rate/s':>6} {'sent':>6} {'sent/s':>7} {'errors':>7} {'err %':>6} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} {'gen CPU':>7} "
        f"{'API idle/peak MB':>17} {'worker idle MB':>14}",
        flush=True,
    )


def _print_row(r: LoadResult) -> None:
    share = 100 * r.errors / r.sent if r.sent else float("nan")
    print(
        f"{r.rate:6.0f} {r.sent:6d} {r.sent_rate:7.1f} {r.errors:7d} {share:6.2f} {r.p50_ms:8.1f} "
        f"{r.p99_ms:8.1f} {r.p999_ms:9.1f} {r.max_ms:8.1f} {r.generator_cpu:6.0f}% "
        f"{r.api_idle_mb:8.1f}/{r.api_peak_mb:<8.1f} {r.worker_idle_mb:14.1f}",
        flush=True,
    )
    split = ", ".join(f"{name} {ms:.2f}" for name, ms in r.cpu_ms.items())
    print(f"{'':>6} CPU ms per request: {split}; machine {r.machine_busy:.0f} % busy", flush=True)
    for kind, count in r.error_kinds.items():
        print(f"{'':>6} {count:6d} x {kind}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200,500,1000", help="requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="per rate")
    parser.add_argument("--quick", action="store_true", help="rates 200,500 for 5 s each")
    parser.add_argument("--profile", type=Path, help="a directory for py-spy profiles of the API")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.seconds = "200,500", 5.0
    try:
        rates = [float(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: expected numbers separated by commas, got {args.rates!r}")
    if any(rate <= 0 for rate in rates) or args.seconds <= 0:
        parser.error("--rates and --seconds must be positive")
    vegeta = ensure_vegeta()
    version = subprocess.run([str(vegeta), "-version"], capture_output=True, text=True).stdout
    print(f"vegeta {version.split()[1] if version.split() else '?'}; {args.seconds:g} s per rate")
    with real_stack() as stack:
        _print_header()
        for rate in rates:
            _print_row(
                run_rate(stack, vegeta, rate=rate, seconds=args.seconds, profile=args.profile)
            )


if __name__ == "__main__":
    main()
