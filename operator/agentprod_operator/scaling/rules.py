"""How many workers a pipeline runs: the scaling decision (pure).

Callers: the operator's scaling timer, every `spec.scaling.pollSeconds` with the newest sample,
and `bench/autoscale_sim.py`, which replays arrival traces through it. No clock and no I/O: the
samples, the current replicas, `now` and the `History` returned last time are arguments, so a
decision is replayable and unit-testable. The data types live in `scaling_models`.

`decide` applies these rules in order; the last rule that changed the number is the reason:
1. paused (spec or annotation): keep the current replicas.
2. no fresh sample (the lag or in-flight read failed): hold, clamped to the bounds; with the
   lag read but in-flight unknown (Redis down), only a scale-up the lag calls for goes ahead.
3. recommendation from the samples of the smoothing window, in two parts: steady (lag mode:
   busy replicas = in-flight / concurrency; rate mode (targetDrainSeconds): arrival rate over
   the measured per-replica throughput) plus backlog (lag / lagPerReplica, or the lag drained
   within targetDrainSeconds). A change within the tolerance is ignored (hysteresis).
4. scale-down stabilization: not below the highest recommendation of the window; once the
   backlog is gone only the steady parts count, so drain capacity goes at once.
5. activation: at zero, wake only when lag ≥ activationLag. Cooldown: go to zero only after
   cooldownSeconds without lag, in-flight or consumed work.
6. provider cap: while the model provider refuses calls (429s, or the own rpm/tpm limiter),
   not above the replicas the calls that get through keep busy (`_provider_cap`); lifted
   step by step once the refusals stop.
7. rate limits per period (up: max(percent, pods); down: percent), and never N → 0 in one
   step: zero is reached from one replica.
8. bounds: minReplicas..maxReplicas.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence

from agentprod_operator.scaling import models

_MIN_TASKS_FOR_SERVICE = 20  # completed tasks in the window before Little's law is trusted
_SERVICE_WEIGHT = 0.5  # a new service-time estimate against the remembered one
_LAG_READINGS = 2  # the newest readings that set the backlog level at once
_SURGE_FACTOR = 2.0  # lag mode: how far above the smoothed lag a held level is a surge
_DROP_FRACTION = 0.5  # rate mode: the newest interval below this share of the window wins


def decide(
    *,
    policy: models.ScalingPolicy,
    samples: Sequence[models.Sample],
    current_replicas: int,
    history: models.History,
    now: float,
) -> models.Decision:
    """The replicas to run now and why; pass the returned `history` to the next call.

    `samples` are the readings since the last call (older or repeated ones are ignored);
    `[]`, or only samples with `lag=None` / `in_flight=None`, means the reads failed: hold —
    except that a readable lag may still scale up while in-flight is unknown.
    """
    current = current_replicas
    history, fresh = _absorb(policy=policy, history=history, samples=samples, now=now)
    if policy.paused:
        note = f"scaling paused; replicas left at {current}"
        return models.Decision(current, models.Reason.PAUSED, history, note)
    if fresh is None:
        held = _clamp(policy, current)
        if held != current:
            return _record(
                policy=policy,
                history=history,
                current=current,
                target=held,
                reason=models.Reason.BOUNDS,
                note="no fresh sample; clamped to the bounds",
                now=now,
            )
        grown = _grow_on_lag_alone(
            policy=policy, samples=samples, current=current, history=history, now=now
        )
        if grown is not None:
            return grown
        note = f"no fresh sample (lag or in-flight unreadable); holding {current}"
        return models.Decision(current, models.Reason.NO_DATA, history, note)

    steady, backlog, basis = _need(policy, history)
    need, lag = steady + backlog, fresh.lag or 0
    if lag:  # while tasks wait, a busy worker is not spare: it takes the next one
        need = max(need, (fresh.in_flight or 0) / policy.concurrency)
    if current == 0 and lag >= policy.activation_lag:
        need = max(need, lag / policy.lag_per_replica)  # waking: the newest lag in full
    want = max(_wanted(policy, need, current), _backlog_floor(policy, history))
    kept = history.recommendations or (models.Recommendation(now, current, current),)
    since = now - policy.scale_down_stabilization_seconds
    window = tuple(r for r in kept if r.at > since)
    window += (models.Recommendation(now, want, _wanted(policy, steady, current)),)
    history = dataclasses.replace(history, recommendations=window)

    target, reason = want, models.Reason.TARGET
    if target < current:
        drained = not lag  # drain capacity goes with the backlog; the rest waits
        ceiling = max(r.steady if drained else r.replicas for r in window)
        held = min(current, max(ceiling, want))
        if held > target:
            target, reason = held, models.Reason.STABILIZED

    last_active = history.last_active_at if history.last_active_at is not None else now
    idle_for = now - last_active
    if current == 0:
        if lag >= policy.activation_lag:
            target, reason = max(target, 1), models.Reason.ACTIVATION
        elif target > 0:
            target, reason = 0, models.Reason.ACTIVATION  # lag below activationLag
    elif target == 0:
        if idle_for < policy.cooldown_seconds:
            target, reason = 1, models.Reason.COOLDOWN
        else:
            reason = models.Reason.IDLE

    history, cap, provider_note = _provider_cap(policy, history, fresh, now)
    if cap is not None and target > cap:
        target, reason = cap, models.Reason.PROVIDER_LIMITED

    limited = _rate_limit(
        policy=policy, events=history.scale_events, current=current, target=target, now=now
    )
    if limited != target:
        target, reason = limited, models.Reason.RATE_LIMITED
    bounded = _clamp(policy, target)
    if bounded != target:
        target, reason = bounded, models.Reason.BOUNDS
    return _record(
        policy=policy,
        history=history,
        current=current,
        target=target,
        reason=reason,
        note=f"{basis}; recommendation {want}; idle {idle_for:.0f}s{provider_note}",
        now=now,
        recommendation=want,
    )


def _provider_cap(
    policy: models.ScalingPolicy,
    history: models.History,
    fresh: models.Sample,
    now: float,
) -> tuple[models.History, int | None, str]:
    """The replicas the model provider serves while it refuses calls, None without a limit.

    Limited: at least `provider_min_refused` calls, and `provider_refused_fraction` of the
    attempts, were refused in the signal window (429/503 from the provider, or the own rpm/tpm
    limiter). More workers would then only add refusals, so the cap is the replicas the work
    that still gets through keeps busy: the seconds the successful calls took per second of
    the window (how many calls the provider serves at once; without call times, the mean
    in-flight tasks) over the concurrency; at most `max_replicas_when_limited`. The in-flight
    count is the fallback only: slots that churn through refused tasks look busy in it. Once
    no call was refused for `provider_hold_seconds`, the cap grows by a quarter (at least one
    replica) per poll until it reaches maxReplicas and is dropped, or a new refusal sets it
    again.
    """
    cleared = dataclasses.replace(history, provider_cap=None, provider_limited_at=None)
    if not policy.provider_aware:
        return cleared, None, ""
    load = fresh.provider
    cap = history.provider_cap
    if load is None:  # no signals read: keep a cap in force, never lift it on an unknown
        return history, cap, "" if cap is None else f"; provider cap {cap} (no signals)"
    refused = load.refused
    if (
        refused >= policy.provider_min_refused
        and refused >= policy.provider_refused_fraction * load.attempts
    ):
        if load.call_seconds > 0 and load.window_seconds > 0:
            busy = load.call_seconds / load.window_seconds  # calls the provider serves at once
        else:  # no call time reported: the in-flight tasks of the window
            since = fresh.at - load.window_seconds
            busy = _mean(s.in_flight or 0 for s in history.samples if s.at > since)
        cap = max(1, math.ceil(busy / policy.concurrency - 1e-9))
        if policy.max_replicas_when_limited is not None:
            cap = min(cap, policy.max_replicas_when_limited)
        history = dataclasses.replace(history, provider_cap=cap, provider_limited_at=fresh.at)
        note = (
            f"; provider limited: {load.throttled} throttled + {load.limited} over the "
            f"rpm/tpm budget of {load.attempts} calls in {load.window_seconds:.0f}s, "
            f"{load.per_minute(load.ok):.0f} ok/min, cap {cap}"
        )
        return history, cap, note
    if cap is None:
        return history, None, ""
    limited_at = history.provider_limited_at if history.provider_limited_at is not None else now
    if now - limited_at < policy.provider_hold_seconds:
        return history, cap, f"; provider cap {cap} (no refusals for {now - limited_at:.0f}s)"
    grown = max(cap + 1, math.ceil(cap * 1.25))
    if grown >= policy.max_replicas:
        return cleared, None, "; provider limit lifted"
    history = dataclasses.replace(history, provider_cap=grown)
    return history, grown, f"; provider limit lifting: cap {cap} → {grown}"


def _grow_on_lag_alone(
    *,
    policy: models.ScalingPolicy,
    samples: Sequence[models.Sample],
    current: int,
    history: models.History,
    now: float,
) -> models.Decision | None:
    """With lag read but in-flight unknown (Redis down), a scale-up the lag calls for.

    In-flight work is taken at its last known level. Only growth is allowed: an unknown
    in-flight count may hide busy workers, so scaling down waits for a full sample.
    """
    readable = [s for s in samples if s.lag is not None and s.in_flight is None]
    if not readable:
        return None
    newest = max(readable, key=lambda s: s.at)
    known = history.samples[-1].in_flight if history.samples else 0
    assumed = dataclasses.replace(newest, in_flight=known)
    decision = decide(
        policy=policy, samples=[assumed], current_replicas=current, history=history, now=now
    )
    if decision.replicas <= current:
        return None
    note = f"in-flight unreadable, taken as {known}; scaling up on lag alone. "
    return dataclasses.replace(decision, message=note + decision.message)


def _absorb(
    *,
    policy: models.ScalingPolicy,
    history: models.History,
    samples: Iterable[models.Sample],
    now: float,
) -> tuple[models.History, models.Sample | None]:
    """History with the new valid samples folded in, and the newest one if it is fresh."""
    newest = history.samples[-1].at if history.samples else -math.inf
    new: list[models.Sample] = []
    for sample in sorted(samples, key=lambda s: s.at):
        if sample.valid and newest < sample.at <= now and (not new or sample.at > new[-1].at):
            new.append(sample)
    if not new:
        return history, None
    kept = history.samples + tuple(new)
    horizon = kept[-1].at - max(policy.smoothing_seconds, policy.rate_window_seconds)
    kept = tuple(s for s in kept if s.at >= horizon)
    active = [s.at for s in new if s.active]
    if active:
        last_active: float | None = max(active)
    elif history.last_active_at is None:
        last_active = new[-1].at  # no memory (a restart): idle time counts from now
    else:
        last_active = history.last_active_at
    history = dataclasses.replace(
        history,
        samples=kept,
        last_active_at=last_active,
        service_seconds=_learn_service(policy, kept, history.service_seconds),
    )
    fresh = new[-1] if now - new[-1].at <= policy.stale_seconds else None
    return history, fresh


def _learn_service(
    policy: models.ScalingPolicy, samples: Sequence[models.Sample], known: float | None
) -> float | None:
    """Mean task duration by Little's law: in-flight time over the tasks completed, smoothed.

    Completed = consumed - growth of in-flight, so a ramp (many tasks just started) does not
    pass for short tasks.
    """
    busy = completed = 0.0
    for before, after in itertools.pairwise(samples):
        if after.consumed_per_second is None:
            continue
        span = after.at - before.at
        busy += span * ((before.in_flight or 0) + (after.in_flight or 0)) / 2
        completed += span * after.consumed_per_second
        completed -= (after.in_flight or 0) - (before.in_flight or 0)
    if completed < max(_MIN_TASKS_FOR_SERVICE, policy.concurrency):
        return known
    estimate = busy / completed
    if known is None:
        return estimate
    return _SERVICE_WEIGHT * estimate + (1 - _SERVICE_WEIGHT) * known


def _arrival_rate(samples: Sequence[models.Sample]) -> float | None:
    """Tasks arriving per second over the samples: lag growth plus what was consumed."""
    arrived = span = 0.0
    for before, after in itertools.pairwise(samples):
        if after.consumed_per_second is None:
            return None
        step = after.at - before.at
        arrived += (after.lag or 0) - (before.lag or 0) + after.consumed_per_second * step
        span += step
    return max(0.0, arrived / span) if span > 0 else None


def _need(policy: models.ScalingPolicy, history: models.History) -> tuple[float, float, str]:
    """Replicas the samples call for (fractional): the steady part, the backlog part, how."""
    newest = history.samples[-1].at
    service = history.service_seconds
    if policy.target_drain_seconds is not None and service is not None:
        window = [s for s in history.samples if s.at >= newest - policy.rate_window_seconds]
        arrivals = _arrival_rate(window)
        latest = _arrival_rate(window[-2:])
        if arrivals is not None and latest is not None:
            if latest < arrivals * _DROP_FRACTION:
                arrivals = latest  # a clear drop (a burst ended) counts at once
            # the arrival rate carries the smoothing here; the backlog level must follow fast
            lag = _mean(s.lag or 0 for s in window[-_LAG_READINGS:])
            per_replica = policy.concurrency / service
            basis = (
                f"rate mode: arrivals {arrivals:.2f}/s, lag {lag:.0f}, "
                f"{per_replica:.2f}/s per replica"
            )
            drain = lag / policy.target_drain_seconds / per_replica
            return arrivals / per_replica, drain, basis
    window = [s for s in history.samples if s.at >= newest - policy.smoothing_seconds]
    lag = _mean(s.lag or 0 for s in window)
    # a surge (the newest readings all at least _SURGE_FACTOR times the smoothed lag) counts in
    # full beside the busy workers; a lone noisy reading is not one. Whatever the busy part,
    # the held backlog alone gets its ceil(lag / lagPerReplica) (`_backlog_floor`).
    held = _held_lag(history)
    if held >= _SURGE_FACTOR * lag:
        lag = held
    busy = _mean(s.in_flight or 0 for s in window) / policy.concurrency
    basis = f"lag mode: lag {lag:.0f}, busy replicas {busy:.2f}"
    return busy, lag / policy.lag_per_replica, basis


def _held_lag(history: models.History) -> int:
    """The lag all of the _LAG_READINGS newest readings reach (0 with fewer readings)."""
    if len(history.samples) < _LAG_READINGS:
        return 0
    return min(s.lag or 0 for s in history.samples[-_LAG_READINGS:])


def _backlog_floor(policy: models.ScalingPolicy, history: models.History) -> int:
    """Lag mode: ceil(held lag / lagPerReplica), the least a held backlog gets.

    The tolerance does not apply to it: 450 waiting with lagPerReplica 100 is 5 replicas,
    not the 4 that 450/4 = 112.5 per replica within 10 % would keep. Busy workers come on top
    through the recommendation (and its tolerance), so a noisy lag beside busy workers does
    not flap.
    """
    if policy.target_drain_seconds is not None and history.service_seconds is not None:
        return 0  # rate mode drains the backlog within targetDrainSeconds instead
    return math.ceil(_held_lag(history) / policy.lag_per_replica)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


def _wanted(policy: models.ScalingPolicy, need: float, current: int) -> int:
    """Whole replicas for `need`; within the tolerance of `current` it stays (hysteresis)."""
    want = math.ceil(need - 1e-9)
    if want < current and need > current * (1 - policy.tolerance):
        return current
    if want > current > 0 and need <= current * (1 + policy.tolerance):
        return current
    return want


def _rate_limit(
    *,
    policy: models.ScalingPolicy,
    events: Sequence[tuple[float, int]],
    current: int,
    target: int,
    now: float,
) -> int:
    """`target` within what the period allows, counted from the size at the period's start."""
    if target > current:
        start = current - _changed(events, since=now - policy.scale_up_period_seconds)
        cap = max(
            math.ceil(start * (1 + policy.scale_up_percent / 100)), start + policy.scale_up_pods
        )
        return min(target, max(cap, current))
    if target < current:
        start = current - _changed(events, since=now - policy.scale_down_period_seconds)
        floor = min(math.floor(start * (1 - policy.scale_down_percent / 100)), current)
        if current > 1:
            floor = max(floor, 1)  # zero only from one replica: never N → 0 in one step
        return max(target, floor)
    return target


def _changed(events: Sequence[tuple[float, int]], *, since: float) -> int:
    """Net change of the replicas decided after `since`."""
    return sum(change for at, change in events if at > since)


def _clamp(policy: models.ScalingPolicy, replicas: int) -> int:
    return max(policy.min_replicas, min(policy.max_replicas, replicas))


def _record(
    *,
    policy: models.ScalingPolicy,
    history: models.History,
    current: int,
    target: int,
    reason: models.Reason,
    note: str,
    now: float,
    recommendation: int | None = None,
) -> models.Decision:
    """The decision, its change (if any) remembered for the rate limits."""
    longest = max(policy.scale_up_period_seconds, policy.scale_down_period_seconds)
    events = tuple(event for event in history.scale_events if event[0] > now - longest)
    if target != current:
        events += ((now, target - current),)
        history = dataclasses.replace(history, last_scale_at=now)
    history = dataclasses.replace(history, scale_events=events)
    message = f"{reason}: {current} → {target} ({note})"
    return models.Decision(target, reason, history, message, recommendation)
