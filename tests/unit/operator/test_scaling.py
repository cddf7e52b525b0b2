"""The scaling decision (pure): one table or sequence per rule.

Cases: bounds; activation 0 → 1 at activationLag (and staying at zero below it); cooldown to
zero only after idle with nothing in flight; smoothing and hysteresis (no flapping on a noisy
constant load, while the same load without them flaps); rate-limited scale-up; stabilized and
rate-limited scale-down that never jumps N → 0; the rate-aware mode; pause (spec and
annotation); a failed read (no sample, lag=None, a stale or repeated sample) holding.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Sequence

import pytest
from agentprod_operator import specs
from agentprod_operator.scaling import rules as scaling
from agentprod_operator.scaling.models import (
    PAUSED_ANNOTATION,
    Decision,
    History,
    ProviderLoad,
    Reason,
    Recommendation,
    Sample,
    ScalingPolicy,
)

POLL = 15
POLICY = ScalingPolicy(
    min_replicas=0,
    max_replicas=20,
    lag_per_replica=100,
    activation_lag=5,
    cooldown_seconds=300,
    concurrency=8,
)


Reading = tuple[int | None, int | None]  # (lag, in_flight); None: that read failed


def run(
    policy: ScalingPolicy,
    readings: Sequence[Reading],
    *,
    replicas: int,
    consumed: float | None = None,
    history: History | None = None,
    start: float = 0.0,
) -> list[Decision]:
    """Decisions for one (lag, in_flight) reading every POLL seconds, each one applied."""
    history = history or History()
    decisions = []
    for i, (lag, in_flight) in enumerate(readings):
        now = start + i * POLL
        sample = Sample(at=now, lag=lag, in_flight=in_flight, consumed_per_second=consumed)
        decision = scaling.decide(
            policy=policy,
            samples=[sample],
            current_replicas=replicas,
            history=history,
            now=now,
        )
        history, replicas = decision.history, decision.replicas
        decisions.append(decision)
    return decisions


def replicas_of(decisions: list[Decision]) -> list[int]:
    return [d.replicas for d in decisions]


def changes(decisions: list[Decision], start: int) -> int:
    path = [start, *replicas_of(decisions)]
    return sum(1 for a, b in itertools.pairwise(path) if a != b)


@pytest.mark.parametrize(
    ("minimum", "maximum", "replicas", "lag", "in_flight", "expected", "reason"),
    [
        (2, 5, 5, 10_000, 40, 5, Reason.BOUNDS),  # wants far more than max
        (2, 5, 2, 0, 0, 2, Reason.BOUNDS),  # idle, cooldown over: not below min
        (0, 5, 9, 0, 72, 5, Reason.BOUNDS),  # max lowered under the current size
        (3, 20, 0, 0, 0, 3, Reason.BOUNDS),  # min raised while at zero
        (0, 20, 4, 0, 32, 4, Reason.TARGET),  # within bounds: the recommendation
    ],
)
def test_bounds(
    minimum: int,
    maximum: int,
    replicas: int,
    lag: int,
    in_flight: int,
    expected: int,
    reason: Reason,
) -> None:
    policy = dataclasses.replace(POLICY, min_replicas=minimum, max_replicas=maximum)
    idle_long_ago = History(last_active_at=-10_000.0, recommendations=(Recommendation(-15, 0, 0),))
    [decision] = run(policy, [(lag, in_flight)], replicas=replicas, history=idle_long_ago)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("lag", "expected", "reason"),
    [
        (0, 0, Reason.TARGET),  # nothing to do
        (4, 0, Reason.ACTIVATION),  # below activationLag (5): stays at zero
        (5, 1, Reason.ACTIVATION),  # at activationLag: 0 → 1
        (250, 3, Reason.ACTIVATION),  # a backlog: straight to what it needs
        (5_000, 8, Reason.RATE_LIMITED),  # 0 → 50 wanted, 8 pods per period allowed
    ],
)
def test_activation(lag: int, expected: int, reason: Reason) -> None:
    [decision] = run(POLICY, [(lag, 0)], replicas=0)
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_cooldown_to_zero_only_after_idle_without_in_flight() -> None:
    # busy until t=60 (in-flight only, no lag), then idle: 1 replica until 300 s idle, then 0
    readings = [(0, 3)] * 5 + [(0, 0)] * 25
    decisions = run(POLICY, readings, replicas=1)
    path = replicas_of(decisions)
    zero_at = path.index(0)
    assert set(path[:zero_at]) == {1}
    assert zero_at * POLL - 4 * POLL >= POLICY.cooldown_seconds  # last active at t=60
    assert decisions[zero_at - 1].reason is Reason.COOLDOWN
    assert decisions[zero_at].reason is Reason.IDLE


def test_in_flight_work_alone_keeps_a_replica() -> None:
    # lag 0 for ten minutes, but one long task still running: never scale to zero
    decisions = run(POLICY, [(0, 1)] * 40, replicas=1)
    assert set(replicas_of(decisions)) == {1}


def test_scale_up_is_fast_but_rate_limited() -> None:
    policy = dataclasses.replace(POLICY, max_replicas=50)
    decisions = run(policy, [(4_000, 16)] * 4, replicas=2)
    # wants 2 busy + 40 for the backlog; period start 2: max(2 x 2, 2 + 8) = 10; 20; 40;
    # then 42 is within the 10 % tolerance of 40
    assert replicas_of(decisions) == [10, 20, 40, 40]
    assert [d.reason for d in decisions] == [Reason.RATE_LIMITED] * 3 + [Reason.TARGET]
    assert decisions[3].recommendation == 40


def test_scale_up_counts_the_whole_period() -> None:
    policy = dataclasses.replace(POLICY, max_replicas=50)
    first = run(policy, [(4_000, 16)], replicas=2)[0]
    again = scaling.decide(
        policy=policy,
        samples=[Sample(at=5, lag=4_000, in_flight=16)],
        current_replicas=first.replicas,
        history=first.history,
        now=5,
    )
    assert (first.replicas, again.replicas) == (10, 10)  # 8 of 8 pods used in this period
    assert again.reason is Reason.RATE_LIMITED


@pytest.mark.parametrize("smoothing", [POLICY.smoothing_seconds, 0])
def test_scale_down_is_stabilized_and_rate_limited_never_n_to_zero(smoothing: float) -> None:
    # 16 busy replicas, then the work stops: held for the window, ≤ 75 % per period, 1, 0
    policy = dataclasses.replace(POLICY, smoothing_seconds=smoothing)
    readings = [(0, 128)] * 4 + [(0, 0)] * 30
    decisions = run(policy, readings, replicas=16)
    path = [16, *replicas_of(decisions)]
    assert decisions[4].replicas == 16
    assert decisions[4].reason is Reason.STABILIZED  # the first idle reading changes nothing
    for before, after in itertools.pairwise(path):
        assert not (before > 1 and after == 0), path  # zero only from one
        assert after >= before // 4, path  # at most 75 % per period
    assert path[-1] == 0
    if not smoothing:  # the raw recommendation falls to 0 at once: the rate limit holds it
        assert decisions[5].replicas == 4
        assert decisions[5].reason is Reason.RATE_LIMITED


def test_restart_with_no_history_does_not_drop_at_once() -> None:
    # the operator restarted: 10 replicas, no history, nothing running
    decisions = run(POLICY, [(0, 0)] * 3, replicas=10)
    assert decisions[0].replicas == 10
    assert decisions[0].reason is Reason.STABILIZED
    assert all(d.replicas >= 1 for d in decisions)  # cooldown counts from the first sample


def noisy_constant_load(seed: int, polls: int) -> list[Reading]:
    """About 10 busy replicas and a lag that jumps around 150 (0..300) from poll to poll."""
    rng = random.Random(seed)
    return [(rng.randint(0, 300), rng.randint(76, 80)) for _ in range(polls)]


def without_smoothing(policy: ScalingPolicy) -> ScalingPolicy:
    """The same policy reacting to the newest reading alone, without hysteresis."""
    return dataclasses.replace(
        policy,
        smoothing_seconds=0,
        rate_window_seconds=POLL,
        tolerance=0,
        scale_down_stabilization_seconds=0,
    )


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_noisy_lag_does_not_flap(seed: int) -> None:
    readings = noisy_constant_load(seed=seed, polls=200)  # 50 minutes
    smoothed = run(POLICY, readings, replicas=12)
    unsmoothed = run(without_smoothing(POLICY), readings, replicas=12)
    assert changes(smoothed, 12) <= 3
    assert changes(unsmoothed, 12) >= 80  # the same readings flap without smoothing


def jittery_consumer(seed: int, polls: int) -> list[Sample]:
    """20 tasks/s arrive steadily; the consumer offset jitters (batched pops): lag 50..250."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    consumed_before: float | None = None
    for i in range(polls):
        at, lag = i * POLL, rng.randint(50, 250)
        consumed = 20.0 * at - lag  # broker offset minus lag
        rate: float | None = None
        if consumed_before is not None:
            rate = (consumed - consumed_before) / POLL
        samples.append(
            Sample(at=at, lag=lag, in_flight=rng.randint(76, 80), consumed_per_second=rate)
        )
        consumed_before = consumed
    return samples


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_rate_mode_does_not_flap_on_a_jittery_consumer(seed: int) -> None:
    policy = dataclasses.replace(POLICY, target_drain_seconds=120, max_replicas=50)
    counts = []
    for candidate in (policy, without_smoothing(policy)):
        history, replicas, path = History(service_seconds=4.0), 10, [10]
        for sample in jittery_consumer(seed, polls=200):
            decision = scaling.decide(
                policy=candidate,
                samples=[sample],
                current_replicas=replicas,
                history=history,
                now=sample.at,
            )
            history, replicas = decision.history, decision.replicas
            path.append(replicas)
        counts.append(sum(1 for a, b in itertools.pairwise(path) if a != b))
    smoothed, unsmoothed = counts
    assert smoothed <= 15  # the backlog term follows the newest lag readings on purpose
    assert unsmoothed >= 80


def rate_history(*, service: float | None) -> History:
    """30 s of 20 tasks/s consumed by 80 busy slots, nothing waiting."""
    steady = tuple(Sample(at=t, lag=0, in_flight=80, consumed_per_second=20.0) for t in (0, 15))
    return History(samples=steady, service_seconds=service, last_active_at=15)


def test_rate_mode_provisions_for_arrivals_and_drains_the_backlog() -> None:
    policy = dataclasses.replace(POLICY, max_replicas=50, target_drain_seconds=60)
    # at t=30: 600 more waiting while 20/s were consumed → 40 arrivals/s over the window
    sample = Sample(at=30, lag=600, in_flight=80, consumed_per_second=20.0)
    decision = scaling.decide(
        policy=policy,
        samples=[sample],
        current_replicas=10,
        history=rate_history(service=4.0),
        now=30,
    )
    # 4 s per task, 8 slots: 2 tasks/s per replica; 40/2 + (300 mean lag / 60 s)/2 = 22.5
    assert decision.history.service_seconds == pytest.approx(4.0)
    assert decision.recommendation == 23
    assert (decision.replicas, decision.reason) == (20, Reason.RATE_LIMITED)  # +100 %
    assert "rate mode" in decision.message


def test_rate_mode_needs_a_measured_service_time() -> None:
    policy = dataclasses.replace(POLICY, target_drain_seconds=60, scale_up_pods=100)
    history = dataclasses.replace(rate_history(service=None), samples=())
    sample = Sample(at=30, lag=600, in_flight=80, consumed_per_second=None)
    decision = scaling.decide(
        policy=policy, samples=[sample], current_replicas=10, history=history, now=30
    )
    assert "lag mode" in decision.message  # 80/8 busy + 600/100 backlog
    assert decision.recommendation == 16


def test_rate_mode_releases_drain_capacity_once_the_backlog_is_gone() -> None:
    policy = dataclasses.replace(POLICY, max_replicas=50, target_drain_seconds=60)
    # raised to 20 at t=15 to drain a backlog; the arrivals alone need 10; now the lag is 0
    history = dataclasses.replace(
        rate_history(service=4.0), recommendations=(Recommendation(15, 20, 10),)
    )
    replicas = 20
    decision = scaling.decide(
        policy=policy,
        samples=[Sample(at=30, lag=0, in_flight=80, consumed_per_second=20.0)],
        current_replicas=replicas,
        history=history,
        now=30,
    )
    assert decision.replicas == 10
    assert decision.reason is Reason.TARGET


def test_pause_leaves_the_replicas_alone() -> None:
    paused = dataclasses.replace(POLICY, paused=True)
    [decision] = run(paused, [(10_000, 0)], replicas=3)
    assert (decision.replicas, decision.reason) == (3, Reason.PAUSED)
    assert decision.history.samples  # samples still recorded for when it resumes


@pytest.mark.parametrize(
    ("annotations", "paused"),
    [
        (None, False),
        ({PAUSED_ANNOTATION: "true"}, True),
        ({PAUSED_ANNOTATION: "True "}, True),
        ({PAUSED_ANNOTATION: "false"}, False),
    ],
)
def test_from_spec(annotations: dict[str, str] | None, paused: bool) -> None:
    spec = specs.ScalingSpec(
        minReplicas=1,
        maxReplicas=7,
        lagPerReplica=50,
        activationLag=3,
        pollSeconds=10,
        cooldownSeconds=120,
    )
    policy = ScalingPolicy.from_spec(spec, concurrency=4, annotations=annotations)
    assert (policy.min_replicas, policy.max_replicas) == (1, 7)
    assert (policy.lag_per_replica, policy.activation_lag) == (50, 3)
    assert (policy.cooldown_seconds, policy.concurrency) == (120, 4)
    assert policy.stale_seconds == 30
    assert policy.target_drain_seconds is None
    assert policy.paused is paused


@pytest.mark.parametrize(
    "samples",
    [
        [],  # the read raised: nothing to pass
        [Sample(at=100, lag=None, in_flight=8)],  # lag unreadable
        [Sample(at=100, lag=50, in_flight=None)],  # in-flight (Redis) unreadable
        [Sample(at=100 - 46, lag=5_000, in_flight=8)],  # older than stale_seconds
        [Sample(at=15, lag=5_000, in_flight=8)],  # the one already seen
    ],
)
def test_a_failed_read_holds_the_last_decision(samples: list[Sample]) -> None:
    [before] = run(POLICY, [(200, 24)], replicas=4, start=15)
    decision = scaling.decide(
        policy=POLICY,
        samples=samples,
        current_replicas=before.replicas,
        history=before.history,
        now=100,
    )
    assert (decision.replicas, decision.reason) == (before.replicas, Reason.NO_DATA)


@pytest.mark.parametrize(
    ("lag", "expected", "reason"),
    [
        (2_000, 20, Reason.TARGET),  # grow on lag: 2,000 held twice → ceil(2,000 / 100)
        (0, 4, Reason.NO_DATA),  # lag gone, in-flight unknown: no scale-down, hold
        (50, 4, Reason.NO_DATA),  # within what runs: hold
    ],
)
def test_with_redis_down_lag_alone_may_only_scale_up(
    lag: int, expected: int, reason: Reason
) -> None:
    [before] = run(POLICY, [(200, 24)], replicas=4, start=15)
    decisions = run(
        POLICY, [(lag, None), (lag, None)], replicas=4, start=30, history=before.history
    )
    assert (decisions[-1].replicas, decisions[-1].reason) == (expected, reason)
    if reason is Reason.TARGET:
        assert "in-flight unreadable" in decisions[-1].message


def test_a_surge_is_met_within_two_polls_despite_a_quiet_window() -> None:
    policy = dataclasses.replace(POLICY, min_replicas=1)
    quiet = run(policy, [(0, 0)] * 8, replicas=1)
    surge = run(policy, [(600, 0)] * 2, replicas=1, start=8 * POLL, history=quiet[-1].history)
    assert replicas_of(surge)[-1] == 6  # ceil(600 / lagPerReplica), not the window's mean
    noisy = run(policy, [(0, 0)] * 8 + [(600, 0), (0, 0)], replicas=1)
    assert replicas_of(noisy)[-2:] == [1, 1]  # one reading alone is not a surge


def stepped(total: int, polls: int) -> list[int]:
    """The lag readings of `total` tasks arriving in equal steps over `polls` polls, then held."""
    return [round(total * min(i + 1, polls) / polls) for i in range(polls + 2)]


@pytest.mark.parametrize("start", [0, 1])
@pytest.mark.parametrize("polls", [1, 2, 4])
@pytest.mark.parametrize(("total", "expected"), [(450, 5), (600, 6), (1_000, 10)])
def test_a_backlog_reaches_ceil_lag_per_replica_within_two_polls_of_arriving(
    start: int, polls: int, total: int, expected: int
) -> None:
    # nothing running yet (pods starting), a quiet window before: the backlog arrives at once
    # or over several polls and then waits; two polls after the last arrival it has its pods
    policy = dataclasses.replace(POLICY, min_replicas=start, activation_lag=1)
    quiet = run(policy, [(0, 0)] * 8, replicas=start)
    lags = stepped(total, polls)
    decisions = run(
        policy,
        [(lag, 0) for lag in lags],
        replicas=start,
        start=8 * POLL,
        history=quiet[-1].history,
    )
    path = replicas_of(decisions)
    assert path[polls] == expected, path  # the second poll that reads the whole backlog
    assert path[-1] == expected, path  # and it stays there, no overshoot
    assert all(r <= expected for r in path), path


def test_450_with_lag_per_replica_100_goes_to_5_not_4() -> None:
    # the case (pollSeconds 5): an early lower reading in the window, then 450 held;
    # the window's mean (< 440) within 10 % of 4 replicas must not keep 4
    policy = dataclasses.replace(POLICY, stale_seconds=15)
    history, replicas, path = History(), 0, []
    for at, lag in enumerate([0, 0, 0, 386, 450, 450, 450, 450]):
        decision = scaling.decide(
            policy=policy,
            samples=[Sample(at=at * 5.0, lag=lag, in_flight=0)],
            current_replicas=replicas,
            history=history,
            now=at * 5.0,
        )
        history, replicas = decision.history, decision.replicas
        path.append(replicas)
    assert path[3] == 4  # 386 arrived: ceil(3.86) at once (activation)
    assert path[5] == 5  # 450 twice: ceil(450 / 100)
    assert path[5:] == [5, 5, 5]


def test_a_busy_pipeline_with_a_held_backlog_gets_busy_plus_backlog() -> None:
    # 4 busy replicas (32 running) and 450 waiting, read twice: 4 + 4.5 → 9
    decisions = run(POLICY, [(450, 32), (450, 32)], replicas=4)
    assert replicas_of(decisions)[-1] == 9


def test_no_data_still_applies_the_bounds() -> None:
    policy = dataclasses.replace(POLICY, max_replicas=3)
    decision = scaling.decide(
        policy=policy, samples=[], current_replicas=6, history=History(), now=0
    )
    assert (decision.replicas, decision.reason) == (3, Reason.BOUNDS)


def test_random_sequences_keep_the_invariants() -> None:
    rng = random.Random(11)
    policy = dataclasses.replace(POLICY, min_replicas=0, max_replicas=12)
    for _ in range(20):
        readings: list[Reading] = [
            (rng.choice([0, 0, 3, 40, 400, 4_000, None]), rng.choice([0, 0, 5, 60]))
            for _ in range(60)
        ]
        decisions = run(policy, readings, replicas=rng.randint(0, 12))
        path = replicas_of(decisions)
        assert all(0 <= r <= 12 for r in path)
        for before, after in itertools.pairwise(path):
            assert not (before > 1 and after == 0)


@pytest.mark.parametrize(
    "change",
    [
        {"min_replicas": 5, "max_replicas": 4},
        {"concurrency": 0},
        {"target_drain_seconds": 0.0},
        {"scale_down_percent": 101.0},
        {"tolerance": 1.0},
    ],
)
def test_invalid_policies_are_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid scaling policy"):
        dataclasses.replace(POLICY, **change)  # type: ignore[arg-type]


def provider(
    *, ok: int = 100, throttled: int = 0, limited: int = 0, call: float = 0.0
) -> ProviderLoad:
    return ProviderLoad(
        window_seconds=30, ok=ok, throttled=throttled, limited=limited, call_seconds=call
    )


def run_with_provider(
    policy: ScalingPolicy,
    readings: Sequence[tuple[int, int, ProviderLoad | None]],
    *,
    replicas: int,
    history: History | None = None,
    start: float = 0.0,
) -> list[Decision]:
    """Like `run`, with the model-side signals of each reading."""
    history = history or History()
    decisions = []
    for i, (lag, in_flight, load) in enumerate(readings):
        now = start + i * POLL
        sample = Sample(at=now, lag=lag, in_flight=in_flight, provider=load)
        decision = scaling.decide(
            policy=policy, samples=[sample], current_replicas=replicas, history=history, now=now
        )
        history, replicas = decision.history, decision.replicas
        decisions.append(decision)
    return decisions


@pytest.mark.parametrize(
    ("load", "when_limited", "expected", "reason"),
    [
        (provider(ok=60, throttled=40), None, 3, Reason.PROVIDER_LIMITED),  # 24 busy / 8
        (provider(ok=60, limited=40), None, 3, Reason.PROVIDER_LIMITED),  # own rpm/tpm budget
        (provider(ok=60, throttled=40), 2, 2, Reason.PROVIDER_LIMITED),  # maxWhenLimited
        (provider(ok=60, throttled=40, call=1_200), None, 5, Reason.PROVIDER_LIMITED),  # 40 s/s
        (provider(ok=100, throttled=2), None, 20, Reason.BOUNDS),  # 2 refusals: not a limit
        (provider(ok=1_000, throttled=30), None, 20, Reason.BOUNDS),  # 3 % of the calls
        (None, None, 20, Reason.BOUNDS),  # no signals kept: lag alone (max 20)
    ],
)
def test_provider_limit_caps_the_replicas(
    load: ProviderLoad | None, when_limited: int | None, expected: int, reason: Reason
) -> None:
    # 10 replicas, 5,000 waiting (lag alone wants the maximum, 20), 24 tasks running
    policy = dataclasses.replace(POLICY, max_replicas_when_limited=when_limited)
    decisions = run_with_provider(policy, [(5_000, 24, load)] * 2, replicas=10)
    assert (decisions[-1].replicas, decisions[-1].reason) == (expected, reason)
    if reason is Reason.PROVIDER_LIMITED:
        assert "provider limited" in decisions[-1].message
        assert decisions[-1].history.provider_cap == expected


def test_provider_awareness_can_be_switched_off() -> None:
    policy = dataclasses.replace(POLICY, provider_aware=False)
    decisions = run_with_provider(
        policy, [(5_000, 24, provider(ok=60, throttled=40))] * 2, replicas=10
    )
    assert decisions[-1].replicas == 20
    assert decisions[-1].history.provider_cap is None


def test_provider_cap_holds_without_signals_then_lifts_step_by_step() -> None:
    limited = run_with_provider(
        POLICY, [(5_000, 24, provider(ok=60, throttled=40))] * 2, replicas=10
    )
    assert limited[-1].replicas == 3
    unknown = run_with_provider(
        POLICY, [(5_000, 24, None)], replicas=3, start=2 * POLL, history=limited[-1].history
    )
    assert unknown[-1].replicas == 3  # signals unreadable: the cap stays
    # the provider answers again: held for provider_hold_seconds, then +25 % per poll
    assert unknown[-1].message.count("provider cap 3") == 1
    clear = run_with_provider(
        POLICY,
        [(5_000, 24, provider(ok=200))] * 12,
        replicas=3,
        start=3 * POLL,
        history=unknown[-1].history,
    )
    path = replicas_of(clear)
    assert path[0] == 4  # 30 s (provider_hold_seconds) without refusals: 3 → 4
    assert path == sorted(path), path  # only up while lifting
    assert path[-1] == 20, path  # lifted: back to what the lag asks
    assert clear[-1].history.provider_cap is None
    assert any("provider limit lifting" in d.message for d in clear)


def test_a_refusal_while_lifting_sets_the_cap_again() -> None:
    readings = [(5_000, 24, provider(ok=60, throttled=40))] * 2 + [(5_000, 32, provider())] * 4
    readings += [(5_000, 40, provider(ok=60, throttled=40))] * 2
    decisions = run_with_provider(POLICY, readings, replicas=10)
    path = replicas_of(decisions)
    assert path[1] == 3, path
    assert max(path[2:6]) > 3, path
    assert decisions[-1].reason is Reason.PROVIDER_LIMITED
    assert path[-1] == decisions[-1].history.provider_cap <= 5, path


def test_from_spec_reads_the_provider_settings() -> None:
    spec = specs.ScalingSpec(
        pollSeconds=20, provider=specs.ProviderScalingSpec(enabled=False, maxReplicasWhenLimited=4)
    )
    policy = ScalingPolicy.from_spec(spec, concurrency=8)
    assert (policy.provider_aware, policy.max_replicas_when_limited) == (False, 4)
    assert policy.provider_hold_seconds == 40
