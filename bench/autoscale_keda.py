"""KEDA (ScaledObject) + HPA with their documented defaults: the simulator's baseline.

Written from /work/shared/briefs/peers.md §1a (KEDA `RequestScale` in scale_scaledobjects.go;
HPA `replica_calculator.go` + `horizontal.go`); each line names the rule it implements. There
is no RocketMQ scaler (keda#6149), so the trigger is what a user would write instead: one
AverageValue metric on the same lag our operator reads (DESIGN §6: messages waiting, not the
running ones), target `lagPerReplica`, active from the same lag as ours. The Kafka scaler's
partition cap does not apply (pop consumers are not bound to queues). Nothing here is tuned:
every number is a default.
"""

from __future__ import annotations

import dataclasses
import math

POLLING_INTERVAL = 30  # §1 pollingInterval default 30 s (KEDA's own loop: 0↔1)
COOLDOWN_PERIOD = 300  # §1 cooldownPeriod default 300 s, only for → 0
INITIAL_COOLDOWN_PERIOD = 0  # §1 initialCooldownPeriod default 0
HPA_SYNC = 15  # §1a HPA "every 15 s" (--horizontal-pod-autoscaler-sync-period)
TOLERANCE = 0.1  # §1a HPA step 2: tolerance 0.1
SCALE_UP_WINDOW = 0  # §1a step 5: scaleUp stabilizationWindowSeconds 0
SCALE_DOWN_WINDOW = 300  # §1a step 5: scaleDown stabilizationWindowSeconds 300
UP_PERCENT, UP_PODS, UP_PERIOD = 100, 4, 15  # §1a step 5: Percent 100/15s + Pods 4/15s, Max
DOWN_PERCENT, DOWN_PERIOD = 100, 15  # §1a step 5: scaleDown Percent 100/15s


@dataclasses.dataclass
class KedaHpa:
    """One ScaledObject and the HPA KEDA creates for it; `tick` is called every second."""

    min_replica_count: int  # ScaledObject minReplicaCount (spec.minReplicas)
    max_replica_count: int  # ScaledObject maxReplicaCount (spec.maxReplicas)
    lag_threshold: int  # trigger lagThreshold: the HPA's AverageValue target
    activation_lag_threshold: int  # trigger activationLagThreshold: active ⇔ lag > this
    hpa_phase: int = 5  # the HPA loop is not aligned with KEDA's
    last_active_time: float | None = None
    recommendations: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    scale_up_events: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = dataclasses.field(default_factory=list)

    @property
    def hpa_min(self) -> int:
        return max(self.min_replica_count, 1)  # §1 "the HPA gets minReplicas=max(min,1)"

    def tick(self, *, now: int, lag: int, replicas: int) -> int:
        """The replicas after whichever of the two loops is due at `now`."""
        if now % POLLING_INTERVAL == 0:
            replicas = self._keda(now=now, lag=lag, replicas=replicas)
        if now % HPA_SYNC == self.hpa_phase % HPA_SYNC:
            replicas = self._hpa(now=now, lag=lag, replicas=replicas)
        return replicas

    def _keda(self, *, now: int, lag: int, replicas: int) -> int:
        """§1a KEDA operator, every pollingInterval (no pause annotations, no fallback)."""
        active = lag > self.activation_lag_threshold  # metric > activation threshold
        if active:
            self.last_active_time = now  # step 2: "Set lastActiveTime=now in both cases"
            if replicas == 0:
                return max(self.min_replica_count, 1)  # step 2: 0 → max(minReplicaCount, 1)
            return replicas
        if replicas > 0 and self.min_replica_count == 0:  # step 3: idle unset, min == 0
            if self.last_active_time is None:  # never active: creation (t=0) + initial…
                deadline = 0.0 + INITIAL_COOLDOWN_PERIOD
            else:
                deadline = self.last_active_time + COOLDOWN_PERIOD
            if now > deadline:
                return self.min_replica_count  # step 3: N → 0 in one step, not via HPA
            return replicas
        if replicas < self.min_replica_count:
            return self.min_replica_count  # step 3: "Else if idle unset and replicas<min → min"
        return replicas

    def _hpa(self, *, now: int, lag: int, replicas: int) -> int:
        """§1a HPA, every 15 s, one External AverageValue metric (the lag)."""
        current = replicas  # step 1: current = scale.spec.replicas
        if current == 0 and self.hpa_min > 0:
            return current  # step 1: ScalingDisabled
        if current > self.max_replica_count:
            return self._rescale(now, current, self.max_replica_count)  # step 1: > max → max
        if current < self.hpa_min:
            return self._rescale(now, current, self.hpa_min)  # step 1: < min → min
        status_replicas = current  # pods of the Deployment (terminating ones are not counted)
        usage = lag  # step 2: usage = Σ metric
        ratio = usage / (self.lag_threshold * status_replicas)
        desired = status_replicas
        if abs(ratio - 1) > TOLERANCE:  # step 2: outside the tolerance
            desired = math.ceil(usage / self.lag_threshold)  # ceil(usage/target)
        stabilized = self._stabilize(now, current, desired)  # step 3
        limited = self._rate_limit(now, current, stabilized)  # step 4
        return self._rescale(now, current, limited)

    def _stabilize(self, now: int, current: int, desired: int) -> int:
        """§1a step 3 (horizontal.go stabilizeRecommendationWithBehaviors)."""
        up = down = desired
        for at, recommendation in self.recommendations:
            if at > now - SCALE_UP_WINDOW:
                up = min(up, recommendation)  # min within scaleUp window (0 s: none)
            if at > now - SCALE_DOWN_WINDOW:
                down = max(down, recommendation)  # max within scaleDown window (300 s)
        keep = max(SCALE_UP_WINDOW, SCALE_DOWN_WINDOW)
        self.recommendations = [r for r in self.recommendations if r[0] > now - keep]
        self.recommendations.append((now, desired))  # record the raw recommendation
        return min(max(current, up), down)  # current brought within [up, down]

    def _rate_limit(self, now: int, current: int, desired: int) -> int:
        """§1a step 4 (convertDesiredReplicasWithBehaviorRate), then clamp to [min, max]."""
        if desired > current:
            added = _within(self.scale_up_events, now - UP_PERIOD)
            removed = _within(self.scale_down_events, now - UP_PERIOD)
            start = current - added + removed  # periodStart
            limit = max(
                math.ceil(start * (1 + UP_PERCENT / 100)),  # Percent → ceil(startx(1+v/100))
                start + UP_PODS,  # Pods → start+v; selectPolicy Max takes the max
            )
            limit = max(limit, current)
            return min(desired, limit, self.max_replica_count)
        if desired < current:
            added = _within(self.scale_up_events, now - DOWN_PERIOD)
            removed = _within(self.scale_down_events, now - DOWN_PERIOD)
            start = current - added + removed
            limit = int(start * (1 - DOWN_PERCENT / 100))  # Percent → floor(startx(1-v/100))
            limit = min(limit, current)
            return max(desired, limit, self.hpa_min)  # never below the HPA's min (1)
        return desired

    def _rescale(self, now: int, current: int, desired: int) -> int:
        """storeScaleEvent: remember the change for the rate limits."""
        if desired > current:
            self.scale_up_events = [e for e in self.scale_up_events if e[0] > now - UP_PERIOD]
            self.scale_up_events.append((now, desired - current))
        elif desired < current:
            self.scale_down_events = [e for e in self.scale_down_events if e[0] > now - DOWN_PERIOD]
            self.scale_down_events.append((now, current - desired))
        return desired


def _within(events: list[tuple[float, int]], since: float) -> int:
    """getReplicasChangePerPeriod: the replicas changed by events after `since`."""
    return sum(change for at, change in events if at > since)
