"""Autoscaling simulator: arrival traces through our scaler, KEDA + HPA and an oracle.

Deterministic (seeded traces, 1 s steps). The cluster model: a FIFO backlog; each ready
replica runs `concurrency` tasks at once; a new pod is ready `startup` seconds after it is
created; scale-in removes starting pods first, then the newest ready ones, and a removed pod
finishes the tasks it runs (workers drain on SIGTERM) while still costing replica-seconds.
Lag = the backlog (messages not yet taken), in-flight = tasks being served.

Policies, side by side on the same tasks:
- ours: `agentprod_operator.scaling.decide` every pollSeconds, on lag, in-flight and the
  consumption rate (rate mode, targetDrainSeconds);
- keda: KEDA + HPA with their defaults (`bench.autoscale_keda`, peers.md §1a);
- oracle: knows the arrivals ahead; provisions for the next start-up delay and drops replicas
  as soon as they are not needed, never waits for a cooldown.

Printed per trace and policy: replica-seconds, queueing delay p50/p95/max, time to drain
(last arrival → last task done), scale events, model calls answered 429, and ours/KEDA,
ours/oracle replica-seconds; then PASS/FAIL against: p95 ≤ KEDA's, replica-seconds ≤ 0.8x
KEDA's and ≤ 1.25x oracle's. The model-bound trace has a provider with a requests-per-minute
limit (a token bucket; a call over it gets 429 and its task waits RETRY_AFTER_SECONDS): there
PASS means ours' 429s ≤ 0.25x KEDA's, p95 ≤ 1.1x KEDA's and replica-seconds ≤ 0.8x KEDA's.

    PYTHONPATH=hack:. .venv/bin/python -m bench.autoscale_sim
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import itertools
import math
import time
from collections.abc import Sequence
from typing import Protocol

from agentprod_operator import specs
from agentprod_operator.scaling import models as scaling_models
from agentprod_operator.scaling import rules as scaling

from bench import autoscale_keda, autoscale_traces

CONCURRENCY = 8  # spec.worker.concurrency
STARTUP_SECONDS = 20  # pod created → ready (image cached, interpreter and clients started)
SPEC = specs.ScalingSpec(
    minReplicas=0,
    maxReplicas=50,
    lagPerReplica=100,
    activationLag=1,
    pollSeconds=15,
    cooldownSeconds=300,
)
TARGET_DRAIN_SECONDS = 120.0  # ours: rate mode
KEDA_P95_FACTOR = 1.0  # ours' p95 delay ≤ KEDA's
KEDA_COST_FACTOR = 0.8  # ours' replica-seconds ≤ 0.8 x KEDA's
ORACLE_COST_FACTOR = 1.25  # ours' replica-seconds ≤ 1.25 x the oracle's
KEDA_THRESHOLDS = (100, 80, 60, 50, 40, 30, 25, 20, 15, 10, 5)  # equal-delay search, lagThreshold
RETRY_AFTER_SECONDS = 5.0  # model-bound trace: a 429 puts the task back for this long
REFUSAL_SECONDS = 0.2  # a 429 answer holds the slot this long
SIGNAL_WINDOW = 30  # ours: seconds of model-side signals per reading (the operator's default)
MODEL_429_FACTOR = 0.25  # model-bound trace: ours' 429s ≤ this x KEDA's
MODEL_P95_FACTOR = 1.1  # and p95 delay ≤ this x KEDA's (the provider bounds both)


class Provider:
    """A model provider's request limit: a token bucket of `rpm`/60 calls per second holding
    10 s of them; a call without a token is answered 429."""

    def __init__(self, rpm: int) -> None:
        self.rate = rpm / 60
        self.capacity = self.rate * 10
        self.tokens = self.capacity
        self.at = 0.0

    def admit(self, now: float) -> bool:
        if now > self.at:  # calls within a second come in slot order, not time order
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclasses.dataclass(frozen=True)
class View:
    """What a policy sees at a second: the backlog, the running tasks, tasks taken so far."""

    lag: int
    in_flight: int
    started: int
    ok: int = 0  # model calls that succeeded so far (model-bound trace)
    throttled: int = 0  # calls answered 429 so far
    call_seconds: float = 0.0  # seconds the successful calls took, so far


class Policy(Protocol):
    name: str

    def tick(self, *, now: int, view: View, replicas: int) -> int:
        """Desired replicas at `now` (called every second; most seconds it keeps `replicas`)."""
        ...


@dataclasses.dataclass(eq=False)
class Pod:
    ready_at: int
    slots: list[float]  # when each slot is free again
    draining: bool = False

    def busy_until(self) -> float:
        """When its last running task ends (a slot that never ran one is at `ready_at`)."""
        return max((free_at for free_at in self.slots if free_at > self.ready_at), default=0.0)

    def running(self, now: float) -> int:
        return sum(1 for free_at in self.slots if free_at > now and free_at > self.ready_at)


class Cluster:
    """Pods, the FIFO backlog and the accounting of one run."""

    def __init__(self, *, concurrency: int, startup: int, provider: Provider | None = None) -> None:
        self.concurrency = concurrency
        self.startup = startup
        self.provider = provider
        self.retrying: list[tuple[float, int, autoscale_traces.Task]] = []  # (due, tie, task)
        self.throttled = 0
        self.call_seconds = 0.0
        self.pods: list[Pod] = []
        self.free: list[tuple[float, int, Pod, int]] = []  # (free at, tie, pod, slot)
        self.tie = itertools.count()
        self.backlog: collections.deque[autoscale_traces.Task] = collections.deque()
        self.started = 0
        self.delays: list[float] = []
        self.last_finish = 0.0
        self.replica_seconds = 0

    @property
    def replicas(self) -> int:
        return sum(1 for pod in self.pods if not pod.draining)

    def view(self, now: int) -> View:
        busy = sum(pod.running(now) for pod in self.pods)
        return View(
            lag=len(self.backlog) + len(self.retrying),  # the retry topic counts in the lag
            in_flight=busy,
            started=self.started,
            ok=self.started,
            throttled=self.throttled,
            call_seconds=self.call_seconds,
        )

    def scale(self, now: int, desired: int) -> None:
        serving = [pod for pod in self.pods if not pod.draining]
        for _ in range(desired - len(serving)):
            pod = Pod(
                ready_at=now + self.startup, slots=[float(now + self.startup)] * self.concurrency
            )
            self.pods.append(pod)
            for slot in range(self.concurrency):
                heapq.heappush(self.free, (pod.slots[slot], next(self.tie), pod, slot))
        # the ReplicaSet removes not-ready pods first, then the newest ready ones
        victims = sorted(serving, key=lambda pod: (pod.ready_at <= now, -pod.ready_at))
        for pod in victims[: max(0, len(serving) - desired)]:
            pod.draining = True
        self.pods = [pod for pod in self.pods if not pod.draining or pod.busy_until() > now]

    def step(self, now: int, arrivals: Sequence[autoscale_traces.Task]) -> None:
        """Serve [now, now + 1): arrivals join the backlog, free slots take tasks in order."""
        self.backlog.extend(arrivals)
        end = now + 1
        while self.retrying and self.retrying[0][0] < end:
            self.backlog.append(heapq.heappop(self.retrying)[2])
        while self.backlog and self.free and self.free[0][0] < end:
            free_at, _, pod, slot = heapq.heappop(self.free)
            if pod.draining or pod.slots[slot] != free_at:
                continue  # a removed pod, or an outdated entry
            task = self.backlog.popleft()
            start = max(free_at, task.arrival, float(now))
            if self.provider is not None and not self.provider.admit(start):
                self.throttled += 1  # 429 + Retry-After: the task waits, the slot is free soon
                heapq.heappush(self.retrying, (start + RETRY_AFTER_SECONDS, next(self.tie), task))
                pod.slots[slot] = start + REFUSAL_SECONDS
                heapq.heappush(self.free, (pod.slots[slot], next(self.tie), pod, slot))
                continue
            self.call_seconds += task.service
            self.delays.append(start - task.arrival)
            finish = start + task.service
            pod.slots[slot] = finish
            self.started += 1
            self.last_finish = max(self.last_finish, finish)
            heapq.heappush(self.free, (finish, next(self.tie), pod, slot))
        self.replica_seconds += len(self.pods)
        self.pods = [pod for pod in self.pods if not pod.draining or pod.busy_until() > end]

    def idle(self, now: int) -> bool:
        return (
            not self.backlog
            and not self.retrying
            and all(pod.busy_until() <= now for pod in self.pods)
        )


class Ours:
    """`scaling.decide` every pollSeconds, fed the sample the operator would read."""

    name = "ours"

    def __init__(self, policy: scaling_models.ScalingPolicy, *, poll: int) -> None:
        self.policy = policy
        self.poll = poll
        self.history = scaling_models.History()
        self.previous: tuple[int, int] | None = None  # (at, tasks started) at the last poll
        self.signals: collections.deque[tuple[int, View]] = collections.deque()

    def tick(self, *, now: int, view: View, replicas: int) -> int:
        if now % self.poll:
            return replicas
        consumed = None
        if self.previous is not None:
            at, started = self.previous
            consumed = (view.started - started) / (now - at)
        self.previous = (now, view.started)
        self.signals.append((now, view))
        while self.signals[0][0] < now - SIGNAL_WINDOW:
            self.signals.popleft()
        first = self.signals[0][1]
        provider = scaling_models.ProviderLoad(
            window_seconds=SIGNAL_WINDOW,
            ok=view.ok - first.ok,
            throttled=view.throttled - first.throttled,
            call_seconds=view.call_seconds - first.call_seconds,
        )
        sample = scaling_models.Sample(
            at=now,
            lag=view.lag,
            in_flight=view.in_flight,
            consumed_per_second=consumed,
            provider=provider,
        )
        decision = scaling.decide(
            policy=self.policy,
            samples=[sample],
            current_replicas=replicas,
            history=self.history,
            now=now,
        )
        self.history = decision.history
        return decision.replicas


class Keda:
    name = "keda"

    def __init__(self, spec: specs.ScalingSpec) -> None:
        self.scaler = autoscale_keda.KedaHpa(
            min_replica_count=spec.minReplicas,
            max_replica_count=spec.maxReplicas,
            lag_threshold=spec.lagPerReplica,
            activation_lag_threshold=spec.activationLag - 1,  # active ⇔ lag ≥ activationLag
        )

    def tick(self, *, now: int, view: View, replicas: int) -> int:
        return self.scaler.tick(now=now, lag=view.lag, replicas=replicas)


class Oracle:
    """Knows every arrival: at `now` runs what the next start-up delay will need.

    Need at second τ: the arrivals of [τ - h, τ + h) (h = horizon / 2) over the per-replica
    service rate; it holds the highest need of [now, now + startup] (pods ordered now are
    ready then) plus the current backlog drained within the horizon, and drops the rest at
    once (no stabilization, no cooldown). It knows the provider's limit too: never more than
    the calls the provider serves keep busy.
    """

    name = "oracle"

    def __init__(
        self,
        trace: autoscale_traces.Trace,
        *,
        concurrency: int,
        startup: int,
        maximum: int,
        horizon: int = 10,
    ) -> None:
        half = horizon // 2
        counts = [0] * (trace.duration + startup + horizon + 2)
        for task in trace.tasks:
            counts[int(task.arrival)] += 1
        sums = list(itertools.accumulate(counts, initial=0))
        self.rate = [
            (sums[min(len(counts), t + half)] - sums[max(0, t - half)]) / horizon
            for t in range(len(counts))
        ]
        self.per_replica = concurrency / trace.mean_service_seconds
        self.provider_rate = math.inf if trace.provider_rpm is None else trace.provider_rpm / 60
        self.startup = startup
        self.horizon = horizon
        self.maximum = maximum

    def tick(self, *, now: int, view: View, replicas: int) -> int:
        ahead = self.rate[min(now, len(self.rate) - 1) : now + self.startup + 1] or [0.0]
        need = min(max(ahead) + view.lag / self.horizon, self.provider_rate) / self.per_replica
        return min(self.maximum, math.ceil(need - 1e-9))


@dataclasses.dataclass(frozen=True)
class Result:
    policy: str
    replica_seconds: int
    p50: float
    p95: float
    worst: float
    drain: float
    events: int
    tasks: int
    throttled: int = 0  # model calls answered 429 (model-bound trace)


def simulate(
    trace: autoscale_traces.Trace,
    policy: Policy,
    *,
    concurrency: int = CONCURRENCY,
    startup: int = STARTUP_SECONDS,
    limit: int = 7200,
) -> Result:
    """Run one trace through one policy until every task is done (or `limit` extra seconds)."""
    provider = None if trace.provider_rpm is None else Provider(trace.provider_rpm)
    cluster = Cluster(concurrency=concurrency, startup=startup, provider=provider)
    by_second: dict[int, list[autoscale_traces.Task]] = collections.defaultdict(list)
    for task in trace.tasks:
        by_second[int(task.arrival)].append(task)
    events = 0
    now = 0
    while now < trace.duration or not cluster.idle(now):
        if now >= trace.duration + limit:
            break
        replicas = cluster.replicas
        desired = policy.tick(now=now, view=cluster.view(now), replicas=replicas)
        if desired != replicas:
            events += 1
            cluster.scale(now, desired)
        cluster.step(now, by_second.get(now, []))
        now += 1
    delays = sorted(cluster.delays)
    last_arrival = trace.tasks[-1].arrival if trace.tasks else 0.0
    return Result(
        policy=policy.name,
        replica_seconds=cluster.replica_seconds,
        p50=_percentile(delays, 0.50),
        p95=_percentile(delays, 0.95),
        worst=delays[-1] if delays else 0.0,
        drain=max(0.0, cluster.last_finish - last_arrival),
        events=events,
        tasks=len(delays),
        throttled=cluster.throttled,
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def policies(trace: autoscale_traces.Trace, *, spec: specs.ScalingSpec = SPEC) -> list[Policy]:
    ours = dataclasses.replace(
        scaling_models.ScalingPolicy.from_spec(spec, concurrency=CONCURRENCY),
        target_drain_seconds=TARGET_DRAIN_SECONDS,  # a proposed spec field (targetDrainSeconds)
    )
    return [
        Ours(ours, poll=spec.pollSeconds),
        Keda(spec),
        Oracle(trace, concurrency=CONCURRENCY, startup=STARTUP_SECONDS, maximum=spec.maxReplicas),
    ]


def work_bound(trace: autoscale_traces.Trace, *, concurrency: int = CONCURRENCY) -> float:
    """Replica-seconds if every slot were busy all the time: no policy can do with less."""
    return sum(task.service for task in trace.tasks) / concurrency


def verdict(trace: autoscale_traces.Trace, results: Sequence[Result]) -> tuple[bool, str]:
    """PASS/FAIL of ours against the targets, with the figures (and the bound if it binds)."""
    by_name = {result.policy: result for result in results}
    ours, keda, oracle = by_name["ours"], by_name["keda"], by_name["oracle"]
    vs_keda = ours.replica_seconds / keda.replica_seconds
    vs_oracle = ours.replica_seconds / oracle.replica_seconds
    if trace.provider_rpm is not None:
        passed = (
            ours.throttled <= MODEL_429_FACTOR * keda.throttled
            and ours.p95 <= MODEL_P95_FACTOR * keda.p95
            and vs_keda <= KEDA_COST_FACTOR
        )
        return passed, (
            f"429s {ours.throttled} vs KEDA {keda.throttled} (≤ {MODEL_429_FACTOR}x); p95 "
            f"{ours.p95:.1f}s vs KEDA {keda.p95:.1f}s (≤ {MODEL_P95_FACTOR}x); replica-s "
            f"{vs_keda:.3f}x KEDA (≤ {KEDA_COST_FACTOR}), {vs_oracle:.3f}x oracle"
        )
    passed = (
        ours.p95 <= KEDA_P95_FACTOR * keda.p95
        and vs_keda <= KEDA_COST_FACTOR
        and vs_oracle <= ORACLE_COST_FACTOR
    )
    text = (
        f"p95 {ours.p95:.1f}s vs KEDA {keda.p95:.1f}s; replica-s {vs_keda:.3f}x KEDA "
        f"(≤ {KEDA_COST_FACTOR}), {vs_oracle:.3f}x oracle (≤ {ORACLE_COST_FACTOR})"
    )
    bound = work_bound(trace)
    if bound > KEDA_COST_FACTOR * keda.replica_seconds:
        text += (
            f"; unreachable: the work alone is {bound / keda.replica_seconds:.2f}x KEDA's "
            "replica-s (KEDA queues instead of scaling)"
        )
    return passed, text


def equal_delay(
    trace: autoscale_traces.Trace, ours: Result, *, spec: specs.ScalingSpec = SPEC
) -> tuple[int, Result] | None:
    """KEDA + HPA with the largest lagThreshold whose p95 delay is no worse than ours."""
    for threshold in KEDA_THRESHOLDS:
        tuned = Keda(spec.model_copy(update={"lagPerReplica": threshold}))
        result = simulate(trace, tuned)
        if result.p95 <= ours.p95:
            return threshold, result
    return None


def equal_delay_line(trace: autoscale_traces.Trace, results: Sequence[Result]) -> str:
    [ours] = [result for result in results if result.policy == "ours"]
    if trace.provider_rpm is not None:
        return "at equal delay: n/a (the provider's limit, not the replicas, sets the delay)"
    found = equal_delay(trace, ours)
    if found is None:
        return (
            f"at equal delay: no KEDA lagThreshold in {KEDA_THRESHOLDS} reaches p95 {ours.p95:.1f}s"
        )
    threshold, keda = found
    return (
        f"at equal delay: KEDA needs lagThreshold {threshold} for p95 {keda.p95:.1f}s "
        f"(ours {ours.p95:.1f}s) and then costs {keda.replica_seconds} replica-s: "
        f"ours {ours.replica_seconds / keda.replica_seconds:.2f}x"
    )


def table(trace: autoscale_traces.Trace, results: Sequence[Result]) -> str:
    by_name = {result.policy: result for result in results}
    keda, oracle = by_name["keda"].replica_seconds, by_name["oracle"].replica_seconds
    header = (
        f"{'policy':<8}{'replica-s':>10}{'p50 s':>8}{'p95 s':>8}{'max s':>8}"
        f"{'drain s':>9}{'events':>8}{'429s':>8}{'÷keda':>7}{'÷oracle':>9}"
    )
    lines = [f"trace {trace.name}: {trace.description}; {len(trace.tasks)} tasks", header]
    for result in results:
        lines.append(
            f"{result.policy:<8}{result.replica_seconds:>10}{result.p50:>8.1f}{result.p95:>8.1f}"
            f"{result.worst:>8.1f}{result.drain:>9.1f}{result.events:>8}{result.throttled:>8}"
            f"{result.replica_seconds / keda:>7.2f}{result.replica_seconds / oracle:>9.2f}"
        )
    bound = work_bound(trace)
    lines.append(f"{'(work)':<8}{bound:>10.0f}{'':>57}{bound / keda:>7.2f}{bound / oracle:>9.2f}")
    passed, text = verdict(trace, results)
    lines.append(f"{'PASS' if passed else 'FAIL'} {trace.name}: {text}")
    lines.append(equal_delay_line(trace, results))
    return "\n".join(lines)


def run(*, seed: int = 0) -> list[tuple[autoscale_traces.Trace, list[Result]]]:
    """Every trace through every policy."""
    return [
        (trace, [simulate(trace, policy) for policy in policies(trace)])
        for trace in autoscale_traces.all_traces(seed=seed)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=0, help="also replay N other random draws, one line each"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    print(
        f"concurrency {CONCURRENCY}/replica, mean task "
        f"{autoscale_traces.MEAN_SERVICE_SECONDS:.0f}s "
        f"(→ {CONCURRENCY / autoscale_traces.MEAN_SERVICE_SECONDS:.1f} tasks/s per replica), "
        f"pod start-up {STARTUP_SECONDS}s; spec: min {SPEC.minReplicas}, max "
        f"{SPEC.maxReplicas}, lagPerReplica {SPEC.lagPerReplica}, pollSeconds "
        f"{SPEC.pollSeconds}, cooldownSeconds {SPEC.cooldownSeconds}; ours: "
        f"targetDrainSeconds {TARGET_DRAIN_SECONDS:.0f}\n"
    )
    for trace, results in run():
        print(table(trace, results) + "\n")
    for seed in range(1, args.seeds + 1):
        for trace, results in run(seed=seed):
            passed, text = verdict(trace, results)
            print(f"seed {seed} {'PASS' if passed else 'FAIL'} {trace.name}: {text}")
    print(f"({time.perf_counter() - began:.1f}s)")


if __name__ == "__main__":
    main()
