"""agentprod vs Celery 5, end to end, on the same machine and the same work.

Two workloads — `echo` (returns the content) and `sleep` (20 ms, agentprod's own agents on both
sides, see `bench.celery_app`) — through

* agentprod on its real stack: HTTP ``POST /tasks`` → `agentprod api` → RocketMQ 5 (namesrv +
  local-mode proxy) → one `agentprod worker` (``WORKER_CONCURRENCY``) → `done` in Redis (+ the
  result message on the result topic);
* Celery with a Redis broker and Redis result backend (its own redis-server), ``acks_late``,
  ``worker_prefetch_multiplier=1``, one worker with the ``threads`` pool and the same
  concurrency; tasks sent with ``apply_async`` (``.delay``) from this process (``celery``),
  or over HTTP through a minimal FastAPI endpoint (`bench.celery_api`, one uvicorn process,
  ``celery-http``) with the same clients as agentprod's — the submit path like for like.

The systems alternate within one run (the first one swaps every round); each round starts fresh
API/worker processes (RocketMQ and both Redis servers stay up for the whole run), warms them up,
records the idle RSS, then runs both workloads while every process's RSS is sampled (a
system's first round warms up with 1,000 tasks, for the JIT of RocketMQ's JVMs). Per task,
latency = completion time (agentprod: ``finished_at`` of the record; Celery: ``date_done`` of
the result) minus the client's clock just before the submit call. Completion throughput = tasks ÷
(last completion - first submit). Completions are read from Redis after the last submit (the
server-side timestamps make the polling moment irrelevant).

    python -m bench.compare_celery [--rounds 3] [--echo-tasks 5000] [--sleep-tasks 2000]
                                   [--concurrency 8] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import httpx
import psutil
import redis
from agentprod import keys
from harness.apps import free_port
from harness.paths import repo_root
from harness.redis import RedisServer

from bench.stack import Stack, percentile, real_stack

SYSTEMS = ("agentprod", "celery", "celery-http")
CELERY_SYSTEMS = SYSTEMS[1:]
SLEEP_SECONDS = 0.02
WARMUP_TASKS = 100  # per round, before the idle RSS is taken
FIRST_WARMUP_TASKS = 1000  # a system's first round: warms the JIT of RocketMQ's JVMs
POLL_SECONDS = 0.5
MB = 1024 * 1024


# --------------------------------------------------------------------------- pure summaries


@dataclass(frozen=True)
class Spread:
    """Median and range of a few per-round values."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f} [{self.low:.2f}..{self.high:.2f}]"


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max; NaN everywhere for no values."""
    if not values:
        nan = float("nan")
        return Spread(nan, nan, nan)
    return Spread(statistics.median(values), min(values), max(values))


def ratios(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    """Per-round ``ours / theirs`` (rounds paired by index; a zero denominator gives NaN)."""
    if len(ours) != len(theirs):
        raise ValueError(f"rounds differ: {len(ours)} vs {len(theirs)}")
    return [a / b if b else float("nan") for a, b in zip(ours, theirs, strict=True)]


@dataclass(frozen=True)
class WorkloadResult:
    """One workload through one system in one round."""

    tasks: int
    submit_rate: float  # tasks/s while submitting
    complete_rate: float  # tasks/s, first submit → last completion
    done_after: float  # s, first submit → last completion
    p50_ms: float
    p99_ms: float


def summarize(
    submits: Sequence[float], finishes: Sequence[float], submit_end: float
) -> WorkloadResult:
    """Figures from per-task submit and completion times (epoch seconds, same order)."""
    if not submits or len(submits) != len(finishes):
        raise ValueError("need one completion time per submit time")
    first = min(submits)
    last = max(finishes)
    latencies = [(done - sent) * 1000 for sent, done in zip(submits, finishes, strict=True)]
    return WorkloadResult(
        tasks=len(submits),
        submit_rate=len(submits) / (submit_end - first),
        complete_rate=len(submits) / (last - first),
        done_after=last - first,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
    )


# --------------------------------------------------------------------------- process sampling


@dataclass
class ProcessStats:
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0


class Sampler:
    """Peak RSS (and CPU seconds) of named processes, sampled by a background thread.

    A name may stand for a process and its children (Celery's prefork pool), summed. With
    ``pss=True`` memory is the proportional set size (shared pages split between the processes
    sharing them, so forked children are not counted twice); the "rss" fields then hold PSS.
    """

    def __init__(self, pids: dict[str, int], *, interval: float = 0.2, pss: bool = False) -> None:
        self._pss = pss
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.stats = {name: ProcessStats() for name in pids}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0: dict[str, float] = {}

    @staticmethod
    def _family(proc: psutil.Process) -> Iterator[psutil.Process]:
        yield proc
        yield from proc.children(recursive=True)

    def _rss(self, proc: psutil.Process) -> float:
        total = 0
        for member in self._family(proc):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += member.memory_full_info().pss if self._pss else member.memory_info().rss
        return total / MB

    def _cpu(self, proc: psutil.Process) -> float:
        total = 0.0
        for member in self._family(proc):
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def record_idle(self) -> None:
        for name, proc in self._procs.items():
            self.stats[name].idle_rss_mb = self._rss(proc)

    def sample(self) -> None:
        for name, proc in self._procs.items():
            stats = self.stats[name]
            stats.peak_rss_mb = max(stats.peak_rss_mb, self._rss(proc))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def start(self) -> None:
        self._cpu0 = {name: self._cpu(proc) for name, proc in self._procs.items()}
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        for name, proc in self._procs.items():
            self.stats[name].cpu_seconds = self._cpu(proc) - self._cpu0[name]


# --------------------------------------------------------------------------- agentprod


async def _post_all(
    url: str, bodies: Sequence[dict[str, Any]], clients: int
) -> tuple[list[str], list[float], float]:
    ids = [""] * len(bodies)
    sent = [0.0] * len(bodies)
    todo = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def loop() -> None:
            for i in todo:
                sent[i] = time.time()
                async with session.post("/tasks", json=bodies[i]) as answer:
                    text = await answer.text()
                    if answer.status != 202:
                        raise RuntimeError(f"POST /tasks answered {answer.status}: {text}")
                    ids[i] = json.loads(text)["task_id"]

        await asyncio.gather(*(loop() for _ in range(clients)))
    return ids, sent, time.time()


def _agentprod_finish(task_id: str, reply: Any) -> float | None:
    """A task's finish time from its record's (status, finished_at, error); None if pending."""
    status, done_at, error = reply
    if status == "failed":
        raise RuntimeError(f"agentprod task {task_id} failed: {error}")
    return float(done_at) if status == "done" else None


def _agentprod_finishes(url: str, ids: Sequence[str], timeout: float) -> list[float]:
    return _finishes(
        url,
        ids,
        timeout,
        what="agentprod",
        ask=lambda pipe, task_id: pipe.hmget(keys.task(task_id), "status", "finished_at", "error"),
        finish=_agentprod_finish,
    )


def _finishes(
    url: str,
    ids: Sequence[str],
    timeout: float,
    *,
    what: str,
    ask: Callable[[Any, str], Any],
    finish: Callable[[str, Any], float | None],
) -> list[float]:
    """Poll Redis (pipelined) until every task has a finish time; `ask` queues one task's read
    on the pipeline, `finish` turns its reply into the time (None while pending)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    finished: dict[str, float] = {}
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending:
        pipe = client.pipeline(transaction=False)
        for task_id in pending:
            ask(pipe, task_id)
        still = []
        for task_id, reply in zip(pending, pipe.execute(), strict=True):
            done_at = finish(task_id, reply)
            if done_at is None:
                still.append(task_id)
            else:
                finished[task_id] = done_at
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} {what} tasks not done after {timeout}s")
            time.sleep(POLL_SECONDS)
    client.close()
    return [finished[task_id] for task_id in ids]


def _bodies(agent: str, count: int) -> list[dict[str, Any]]:
    metadata = {"sleep_seconds": SLEEP_SECONDS} if agent == "sleep" else {}
    return [
        {"user_id": "bench", "content": f"task {i}", "agent": agent, "metadata": metadata}
        for i in range(count)
    ]


@dataclass
class SystemRound:
    workloads: dict[str, WorkloadResult] = field(default_factory=dict)
    processes: dict[str, ProcessStats] = field(default_factory=dict)


def run_agentprod(stack: Stack, args: argparse.Namespace, *, warmup: int) -> SystemRound:
    topic, group = stack.pipeline()
    api = stack.launch("api", stack.env(topic, group))
    worker = stack.launch(
        "worker", stack.env(topic, group, AGENT="echo", WORKER_CONCURRENCY=str(args.concurrency))
    )
    pids = {"api": api.process.pid, "worker": worker.process.pid}
    mq = stack.mq.pids()
    pids |= {f"rocketmq {name}": pid for name, pid in mq.items() if pid is not None}
    if stack.redis.pid is not None:
        pids["redis"] = stack.redis.pid
    result = SystemRound()
    try:
        ids, _, _ = asyncio.run(_post_all(api.url, _bodies("echo", warmup), args.clients))
        _agentprod_finishes(stack.redis.url, ids, timeout=120)
        time.sleep(2)
        sampler = Sampler(pids)
        sampler.record_idle()
        sampler.start()
        for agent, count in (("echo", args.echo_tasks), ("sleep", args.sleep_tasks)):
            ids, sent, end = asyncio.run(_post_all(api.url, _bodies(agent, count), args.clients))
            finishes = _agentprod_finishes(stack.redis.url, ids, timeout=args.timeout)
            result.workloads[agent] = summarize(sent, finishes, end)
        sampler.stop()
        result.processes = sampler.stats
    finally:
        stack.stop_processes()
    return result


# --------------------------------------------------------------------------- Celery


class CeleryWorker:
    """`celery -A bench.celery_app worker` as a process of its own."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        log: Path,
        pool: str,
        concurrency: int,
        app: str = "bench.celery_app",
    ) -> None:
        celery = str(Path(sys.executable).with_name("celery"))
        self._log = log.open("ab")
        argv = [
            celery, "-A", app, "worker",
            "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", "WARNING", "--hostname", f"bench-{os.getpid()}@%h",
        ]  # fmt: skip
        pythonpath = os.pathsep.join([str(repo_root()), os.environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            argv,
            env=os.environ | env | {"PYTHONPATH": pythonpath},
            cwd=repo_root(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: finish what it holds
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


def _celery_finish(task_id: str, raw: Any) -> float | None:
    """A task's `date_done` from the Redis result backend's meta; None if pending."""
    meta = json.loads(raw) if raw else {}
    if meta.get("status") == "FAILURE":
        raise RuntimeError(f"celery task {task_id} failed: {meta.get('result')}")
    if meta.get("status") == "SUCCESS":
        return datetime.datetime.fromisoformat(meta["date_done"]).timestamp()
    return None


def _celery_finishes(url: str, ids: Sequence[str], timeout: float) -> list[float]:
    return _finishes(
        url,
        ids,
        timeout,
        what="celery",
        ask=lambda pipe, task_id: pipe.get(f"celery-task-meta-{task_id}"),
        finish=_celery_finish,
    )


def _send_all(module: ModuleType, agent: str, count: int) -> tuple[list[str], list[float], float]:
    metadata = {"sleep_seconds": SLEEP_SECONDS} if agent == "sleep" else {}
    send: Callable[..., Any] = module.run_agent.apply_async
    ids, sent = [], []
    for i in range(count):
        sent.append(time.time())
        ids.append(send(args=(agent, f"task {i}", metadata)).id)
    return ids, sent, time.time()


class CeleryAPI:
    """`uvicorn bench.celery_api:app`: Celery behind a minimal FastAPI endpoint."""

    def __init__(self, *, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        argv = [
            sys.executable, "-m", "uvicorn", "bench.celery_api:app", "--host", "127.0.0.1",
            "--port", str(self.port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        pythonpath = os.pathsep.join([str(repo_root()), os.environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            argv,
            env=os.environ | env | {"PYTHONPATH": pythonpath},
            cwd=repo_root(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError("bench.celery_api did not answer within 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


def run_celery(
    server: RedisServer,
    home: Path,
    module: ModuleType,
    args: argparse.Namespace,
    *,
    warmup: int,
    http: bool = False,
) -> SystemRound:
    flush = redis.Redis(host="127.0.0.1", port=server.port)
    flush.flushall()
    flush.close()
    worker = CeleryWorker(
        env=_celery_env(server),
        log=home / "celery-worker.log",
        pool=args.celery_pool,
        concurrency=args.concurrency,
    )
    backend = f"redis://127.0.0.1:{server.port}/1"
    api = CeleryAPI(env=_celery_env(server), log=home / "celery-api.log") if http else None
    pids = {"worker": worker.process.pid}
    if api is not None:
        pids["api"] = api.process.pid
    if server.pid is not None:
        pids["redis"] = server.pid

    def send(agent: str, count: int) -> tuple[list[str], list[float], float]:
        if api is None:
            return _send_all(module, agent, count)
        return asyncio.run(_post_all(api.url, _bodies(agent, count), args.clients))

    result = SystemRound()
    try:
        ids, _, _ = send("echo", warmup)  # also waits for the worker to start
        _celery_finishes(backend, ids, timeout=120)
        time.sleep(2)
        sampler = Sampler(pids)
        sampler.record_idle()
        sampler.start()
        for agent, count in (("echo", args.echo_tasks), ("sleep", args.sleep_tasks)):
            ids, sent, end = send(agent, count)
            finishes = _celery_finishes(backend, ids, timeout=args.timeout)
            result.workloads[agent] = summarize(sent, finishes, end)
        sampler.stop()
        result.processes = sampler.stats
    finally:
        if api is not None:
            api.stop()
        worker.stop()
    return result


def _celery_env(server: RedisServer) -> dict[str, str]:
    return {
        "BENCH_CELERY_BROKER": f"redis://127.0.0.1:{server.port}/0",
        "BENCH_CELERY_BACKEND": f"redis://127.0.0.1:{server.port}/1",
    }


# --------------------------------------------------------------------------- report


def _print_round(number: int, order: Sequence[str], rounds: dict[str, SystemRound]) -> None:
    print(f"\n== round {number} (order: {' then '.join(order)})")
    print(
        f"{'workload':<12} {'system':<10} {'submit/s':>9} {'complete/s':>10} "
        f"{'done s':>7} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for workload in ("echo", "sleep"):
        for system in SYSTEMS:
            w = rounds[system].workloads[workload]
            print(
                f"{workload + ' x' + str(w.tasks):<12} {system:<10} {w.submit_rate:9.1f} "
                f"{w.complete_rate:10.1f} {w.done_after:7.1f} {w.p50_ms:8.1f} {w.p99_ms:8.1f}"
            )
    print(f"{'process':<28} {'idle MB':>8} {'peak MB':>8} {'CPU s':>7}")
    for system in SYSTEMS:
        for name, stats in rounds[system].processes.items():
            print(
                f"{system + ' ' + name:<28} {stats.idle_rss_mb:8.1f} {stats.peak_rss_mb:8.1f} "
                f"{stats.cpu_seconds:7.1f}"
            )
    sys.stdout.flush()


def _print_summary(history: list[dict[str, SystemRound]]) -> None:
    print(
        f"\n== summary over {len(history)} round(s): median [min..max]; "
        "ratio = agentprod / the Celery side (celery: apply_async in-process; celery-http: "
        "over HTTP through FastAPI)"
    )
    metrics = (
        ("complete/s", "complete_rate"),
        ("submit/s", "submit_rate"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
    )
    print(
        f"{'workload':<9} {'metric':<11} "
        + " ".join(f"{s:>22}" for s in SYSTEMS)
        + " ".join(f"{'ratio ' + s:>22}" for s in CELERY_SYSTEMS)
    )
    for workload in ("echo", "sleep"):
        for label, attr in metrics:
            values = {
                system: [getattr(r[system].workloads[workload], attr) for r in history]
                for system in SYSTEMS
            }
            cells = [f"{spread(values[s])!s:>22}" for s in SYSTEMS]
            cells += [
                f"{spread(ratios(values['agentprod'], values[s]))!s:>22}" for s in CELERY_SYSTEMS
            ]
            print(f"{workload:<9} {label:<11} " + " ".join(cells))
    cpu = {
        system: [sum(p.cpu_seconds for p in r[system].processes.values()) for r in history]
        for system in SYSTEMS
    }
    cells = [f"{spread(cpu[s])!s:>22}" for s in SYSTEMS]
    cells += [f"{spread(ratios(cpu['agentprod'], cpu[s]))!s:>22}" for s in CELERY_SYSTEMS]
    print(f"{'both':<9} {'stack CPU s':<11} " + " ".join(cells))
    print(f"{'process':<28} {'idle MB':>22} {'peak MB':>22}")
    for system in SYSTEMS:
        for name in history[0][system].processes:
            idle = spread([r[system].processes[name].idle_rss_mb for r in history])
            peak = spread([r[system].processes[name].peak_rss_mb for r in history])
            print(f"{system + ' ' + name:<28} {idle!s:>22} {peak!s:>22}")


def _machine() -> str:
    mem = psutil.virtual_memory().total / 1024**3
    return f"{os.cpu_count()} CPUs, {mem:.0f} GiB, Python {sys.version.split()[0]}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--echo-tasks", type=int, default=5000)
    parser.add_argument("--sleep-tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8, help="per worker, both systems")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--celery-pool", choices=("threads", "prefork"), default="threads")
    parser.add_argument("--timeout", type=float, default=900, help="per workload, seconds")
    parser.add_argument("--quick", action="store_true", help="1 round, 500 echo + 200 sleep")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.echo_tasks, args.sleep_tasks = 1, 500, 200
    for flag in ("rounds", "echo_tasks", "sleep_tasks", "concurrency", "clients"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")

    import celery

    print(
        f"machine: {_machine()}; celery {celery.__version__} ({args.celery_pool} pool); "
        f"concurrency {args.concurrency}; echo x{args.echo_tasks}, sleep {SLEEP_SECONDS * 1000:.0f}"
        f" ms x{args.sleep_tasks}; {args.clients} HTTP clients for agentprod and celery-http",
        flush=True,
    )
    history: list[dict[str, SystemRound]] = []
    with real_stack() as stack:
        server = RedisServer(home=stack.home / "celery-redis", port=free_port())
        server.start()
        try:
            os.environ.update(_celery_env(server))
            module = importlib.import_module("bench.celery_app")
            for number in range(1, args.rounds + 1):
                order = SYSTEMS if number % 2 else SYSTEMS[::-1]
                rounds: dict[str, SystemRound] = {}
                warmup = FIRST_WARMUP_TASKS if number == 1 else WARMUP_TASKS
                for system in order:
                    if system == "agentprod":
                        rounds[system] = run_agentprod(stack, args, warmup=warmup)
                    else:
                        rounds[system] = run_celery(
                            server,
                            stack.home,
                            module,
                            args,
                            warmup=warmup,
                            http=system == "celery-http",
                        )
                history.append(rounds)
                _print_round(number, order, rounds)
        finally:
            server.stop()
    _print_summary(history)
    if args.json:
        data = {
            "machine": _machine(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "rounds": [{s: asdict(r) for s, r in rounds.items()} for rounds in history],
        }
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
