"""Arrival traces for the autoscaling simulator (`bench.autoscale_sim`), seeded and replayable.

A trace is the list of tasks (arrival time, service seconds) every policy sees unchanged, plus
the facts the oracle is allowed to know (the mean service time, the provider's limit). Four
shapes:
- step: idle, a sudden burst at a constant rate, idle again (activation, ramp, scale to zero);
- diurnal: a day compressed into an hour, a cosine wave with multiplicative noise per block;
- spikes: a low base with short tall spikes and heavy-tailed (Pareto) task durations;
- model: model-bound agent work (1-10 s calls) whose burst exceeds the provider's RPM limit.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

MEAN_SERVICE_SECONDS = 4.0  # one task; a worker runs `concurrency` of them at once


@dataclasses.dataclass(frozen=True)
class Task:
    arrival: float
    service: float


@dataclasses.dataclass(frozen=True)
class Trace:
    name: str
    description: str
    duration: int  # seconds of arrivals (the simulation runs on until the queue is empty)
    tasks: tuple[Task, ...]  # sorted by arrival
    mean_service_seconds: float
    provider_rpm: int | None = None  # model-bound: the provider serves this many calls/min


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method for small means, a rounded normal for large ones (fast enough here)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _exponential(rng: random.Random, mean: float) -> float:
    return rng.expovariate(1 / mean)


def _pareto(rng: random.Random, mean: float, alpha: float = 2.1, cap: float = 600.0) -> float:
    """Heavy tail: Pareto with shape `alpha` (infinite variance below 2) and the given mean."""
    scale = mean * (alpha - 1) / alpha
    return min(cap, scale * rng.paretovariate(alpha))


def build(
    *,
    name: str,
    description: str,
    rate: Callable[[int], float],
    duration: int,
    seed: int,
    service: Callable[[random.Random, float], float] = _exponential,
    mean_service: float = MEAN_SERVICE_SECONDS,
    scale_rate: bool = True,
    provider_rpm: int | None = None,
) -> Trace:
    """Poisson arrivals at `rate(second)` per second, spread uniformly within each second.

    Rates are written for MEAN_SERVICE_SECONDS and scaled for another `mean_service`, so a
    trace asks for the same replicas whatever the task length.
    """
    rng = random.Random(seed)
    scale = MEAN_SERVICE_SECONDS / mean_service if scale_rate else 1.0
    tasks: list[Task] = []
    for second in range(duration):
        count = _poisson(rng, scale * rate(second))
        arrivals = sorted(second + rng.random() for _ in range(count))
        tasks.extend(Task(at, service(rng, mean_service)) for at in arrivals)
    return Trace(name, description, duration, tuple(tasks), mean_service, provider_rpm)


def step(
    *,
    seed: int = 1,
    before: int = 120,
    burst: int = 900,
    after: int = 780,
    mean_service: float = MEAN_SERVICE_SECONDS,
) -> Trace:
    level = 40.0

    def rate(second: int) -> float:
        return level if before <= second < before + burst else 0.0

    return build(
        name="step",
        description=f"idle {before}s, {level:.0f}/s for {burst}s, idle {after}s",
        rate=rate,
        duration=before + burst + after,
        seed=seed,
        mean_service=mean_service,
    )


def diurnal(
    *,
    seed: int = 2,
    duration: int = 3600,
    block: int = 30,
    noise: float = 0.3,
    mean_service: float = MEAN_SERVICE_SECONDS,
) -> Trace:
    low, high = 2.0, 30.0
    rng = random.Random(seed * 7919)
    factors = [math.exp(rng.gauss(0, noise) - noise**2 / 2) for _ in range(duration // block + 1)]

    def rate(second: int) -> float:
        wave = low + (high - low) * (1 - math.cos(2 * math.pi * second / duration)) / 2
        return wave * factors[second // block]

    return build(
        name="diurnal",
        description=f"{low:.0f}..{high:.0f}/s cosine over {duration}s, xlognormal(sigma={noise}) "
        f"per {block}s",
        rate=rate,
        duration=duration,
        seed=seed,
        mean_service=mean_service,
    )


def spikes(
    *,
    seed: int = 3,
    duration: int = 3600,
    count: int = 6,
    mean_service: float = MEAN_SERVICE_SECONDS,
) -> Trace:
    base, peak = 4.0, 60.0
    rng = random.Random(seed * 104729)
    starts = sorted(rng.uniform(300, duration - 400) for _ in range(count))
    windows = [(start, start + rng.uniform(30, 90)) for start in starts]

    def rate(second: int) -> float:
        return peak if any(a <= second < b for a, b in windows) else base

    return build(
        name="spikes",
        description=f"{base:.0f}/s base, {count} spikes of {peak:.0f}/s for 30-90s, "
        "Pareto(2.1) durations",
        rate=rate,
        duration=duration,
        seed=seed,
        service=_pareto,
        mean_service=mean_service,
    )


def model_bound(
    *,
    seed: int = 4,
    base: float = 3.0,
    burst: float = 15.0,
    rpm: int = 480,
    before: int = 300,
    length: int = 300,
    after: int = 900,
) -> Trace:
    """Agent work bound by the model: one call per task, 1-10 s model latency (uniform), and
    a provider that serves `rpm` calls a minute (more get 429 + Retry-After). The burst asks
    for more than the provider serves, so more workers only add 429s."""

    def rate(second: int) -> float:
        return burst if before <= second < before + length else base

    def latency(rng: random.Random, mean: float) -> float:
        return rng.uniform(1.0, 10.0)

    return build(
        name="model",
        description=f"{base:.0f}/s, {burst:.0f}/s for {length}s, {base:.0f}/s; 1-10 s model "
        f"calls, provider {rpm} RPM ({rpm / 60:.0f}/s)",
        rate=rate,
        duration=before + length + after,
        seed=seed,
        service=latency,
        mean_service=5.5,
        scale_rate=False,
        provider_rpm=rpm,
    )


def all_traces(*, seed: int = 0, mean_service: float = MEAN_SERVICE_SECONDS) -> list[Trace]:
    """The four traces; `seed` 0 is the published run, others replay new random draws."""
    base = 11 * seed
    return [
        step(seed=base + 1, mean_service=mean_service),
        diurnal(seed=base + 2, mean_service=mean_service),
        spikes(seed=base + 3, mean_service=mean_service),
        model_bound(seed=base + 4),
    ]
