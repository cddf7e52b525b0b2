"""The autoscaling simulator (bench/autoscale_sim.py) on a short trace, and its KEDA baseline.

Cases: every policy serves every task of a short burst and its accounting adds up (replica-
seconds at least the work, p50 ≤ p95 ≤ max, scale events); runs are deterministic; the KEDA
+ HPA baseline keeps its documented behaviours (0 → 1 only on KEDA's 30 s poll, HPA holding
the highest recommendation for 300 s, N → 0 in one step after the 300 s cooldown).
"""

from __future__ import annotations

import pytest

from bench import autoscale_keda, autoscale_sim, autoscale_traces


@pytest.fixture(scope="module")
def short() -> autoscale_traces.Trace:
    return autoscale_traces.step(seed=5, before=30, burst=120, after=420)


@pytest.mark.parametrize("name", ["ours", "keda", "oracle"])
def test_each_policy_serves_every_task(short: autoscale_traces.Trace, name: str) -> None:
    [policy] = [p for p in autoscale_sim.policies(short) if p.name == name]
    result = autoscale_sim.simulate(short, policy)
    assert result.tasks == len(short.tasks) > 0
    assert result.replica_seconds >= autoscale_sim.work_bound(short) > 0
    assert 0 <= result.p50 <= result.p95 <= result.worst
    assert result.events >= 2  # up for the burst, down (to zero) after it
    assert result.drain >= 0


def test_runs_are_deterministic(short: autoscale_traces.Trace) -> None:
    first = [autoscale_sim.simulate(short, p) for p in autoscale_sim.policies(short)]
    again = [autoscale_sim.simulate(short, p) for p in autoscale_sim.policies(short)]
    assert first == again
    assert autoscale_traces.step(seed=5) == autoscale_traces.step(seed=5)


def test_table_prints_every_policy_and_a_verdict(short: autoscale_traces.Trace) -> None:
    results = [autoscale_sim.simulate(short, p) for p in autoscale_sim.policies(short)]
    text = autoscale_sim.table(short, results)
    for word in ("ours", "keda", "oracle", "(work)", "replica-s", "p95"):
        assert word in text
    assert text.splitlines()[-2].startswith(("PASS step", "FAIL step"))
    assert text.splitlines()[-1].startswith("at equal delay: ")


def keda() -> autoscale_keda.KedaHpa:
    return autoscale_keda.KedaHpa(
        min_replica_count=0, max_replica_count=50, lag_threshold=100, activation_lag_threshold=0
    )


def test_keda_wakes_only_on_its_polling_interval() -> None:
    scaler = keda()
    assert scaler.tick(now=29, lag=500, replicas=0) == 0  # HPA is disabled at zero
    assert scaler.tick(now=30, lag=500, replicas=0) == 1  # KEDA: 0 → max(min, 1)


def test_hpa_scales_up_by_policy_and_holds_down_for_300s() -> None:
    scaler = keda()
    replicas = scaler.tick(now=30, lag=3_000, replicas=0)
    replicas = scaler.tick(now=35, lag=3_000, replicas=replicas)
    assert replicas == 5  # max(100 %, 4 pods) from 1
    replicas = scaler.tick(now=50, lag=3_000, replicas=replicas)
    assert replicas == 10
    for now in range(51, 400):  # the lag is gone; recommendations fall to 0 → min 1
        replicas = scaler.tick(now=now, lag=0, replicas=replicas)
        if now < 50 + autoscale_keda.SCALE_DOWN_WINDOW:
            assert replicas == 10, now  # the window's highest recommendation (30) holds it
    assert replicas == 0  # 300 s after the last active poll (t=30): N → 0 at once


def test_keda_goes_to_zero_in_one_step() -> None:
    scaler = keda()
    scaler.tick(now=0, lag=10, replicas=0)  # active at t=0
    assert scaler.tick(now=300, lag=0, replicas=7) == 7  # not yet: now > 0 + 300 is false
    assert scaler.tick(now=330, lag=0, replicas=7) == 0  # 7 → 0, no HPA scale-down policy


def test_equal_delay_finds_a_keda_at_least_as_fast_as_ours(short: autoscale_traces.Trace) -> None:
    results = [autoscale_sim.simulate(short, p) for p in autoscale_sim.policies(short)]
    [ours] = [r for r in results if r.policy == "ours"]
    found = autoscale_sim.equal_delay(short, ours)
    line = autoscale_sim.equal_delay_line(short, results)
    if found is None:
        assert "no KEDA lagThreshold" in line
    else:
        threshold, keda = found
        assert keda.p95 <= ours.p95
        assert f"lagThreshold {threshold} " in line


def test_model_bound_trace_ours_stays_under_the_provider_limit() -> None:
    # a short model-bound burst: every task is served by every policy (429s put back, never
    # lost); KEDA scales on lag into the provider's limit, ours caps at what it serves
    trace = autoscale_traces.model_bound(before=60, length=120, after=300)
    results = {p.name: autoscale_sim.simulate(trace, p) for p in autoscale_sim.policies(trace)}
    for result in results.values():
        assert result.tasks == len(trace.tasks) > 0
    assert results["keda"].throttled > 0
    assert results["ours"].throttled < results["keda"].throttled / 2
    assert results["ours"].replica_seconds < results["keda"].replica_seconds
    text = autoscale_sim.table(trace, list(results.values()))
    assert "429s" in text
    assert text.splitlines()[-2].startswith(("PASS model", "FAIL model"))


def test_provider_token_bucket_admits_its_rate() -> None:
    provider = autoscale_sim.Provider(rpm=120)  # 2/s, 20 in the bucket
    admitted = sum(provider.admit(t / 10) for t in range(600))  # 10 calls/s for 60 s
    assert 20 + 2 * 59 <= admitted <= 20 + 2 * 60 + 1
