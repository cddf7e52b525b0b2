"""The values `scaling.decide` works on (pure data): samples in, a decision and its memory out.

`ScalingPolicy.from_spec` turns `spec.scaling` (+ the worker's concurrency and the pause
annotation) into the tunables; `History` is what the decision remembers between calls (the
operator keeps the last one per pipeline, the simulator per run); `Decision` is the answer.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from agentprod_operator import specs

PAUSED_ANNOTATION = "agentprod.io/scaling-paused"  # "true" pauses, like spec.scaling.paused


class Reason(enum.StrEnum):
    """The rule that set the replicas (ScalingActive condition reason, events, status)."""

    TARGET = "target"  # the recommendation, as computed
    ACTIVATION = "activation"  # woken from zero by lag ≥ activationLag, or kept at zero below
    STABILIZED = "stabilized"  # a scale-down held at the window's highest recommendation
    RATE_LIMITED = "rate-limited"  # the change allowed per period is used up
    COOLDOWN = "cooldown"  # kept at one replica until idle for cooldownSeconds
    IDLE = "idle"  # scaled to zero: idle for cooldownSeconds
    BOUNDS = "bounds"  # clamped to minReplicas..maxReplicas
    PAUSED = "paused"  # spec.scaling.paused or the annotation: replicas left alone
    NO_DATA = "no-data"  # no fresh sample (a lag or in-flight read failed): hold
    PROVIDER_LIMITED = "provider-limited"  # capped at what the model provider serves


@dataclasses.dataclass(frozen=True)
class ProviderLoad:
    """The model-side signals of the pipeline's workers over the `window_seconds` before a
    reading (`agentprod.llm.signals`): calls that succeeded, calls the provider refused
    (429/503), calls the own requests/tokens-per-minute limiter refused, the seconds the
    successful calls took and their tokens."""

    window_seconds: float
    ok: int = 0
    throttled: int = 0
    limited: int = 0
    call_seconds: float = 0.0
    tokens: int = 0

    @property
    def refused(self) -> int:
        return self.throttled + self.limited

    @property
    def attempts(self) -> int:
        return self.ok + self.refused

    def per_minute(self, count: float) -> float:
        return count * 60 / self.window_seconds if self.window_seconds > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class Sample:
    """One reading at `at` (seconds on the caller's clock).

    lag: Σ(brokerOffset - consumerOffset) over the request topic, its high-priority twin
    (`<request>-high`) and their retry topics
    (DESIGN §6), None when a read failed. in_flight: tasks `running` in Redis, None when that
    read failed. consumed_per_second: messages the group took per second since the previous
    reading (its consumer-offset delta), None when unknown; the rate mode needs it.
    """

    at: float
    lag: int | None
    in_flight: int | None
    consumed_per_second: float | None = None
    provider: ProviderLoad | None = None  # None: no signals read (none kept, or unreadable)

    @property
    def valid(self) -> bool:
        return self.lag is not None and self.in_flight is not None

    @property
    def active(self) -> bool:
        """Work was waiting, running, or consumed since the previous reading."""
        return bool(self.lag or self.in_flight or self.consumed_per_second)


@dataclasses.dataclass(frozen=True)
class ScalingPolicy:
    """The tunables of `decide` (times in seconds, percents per period); see `from_spec`."""

    min_replicas: int = 0
    max_replicas: int = 20
    lag_per_replica: int = 100  # lag mode: waiting tasks one replica (beyond the busy ones) holds
    activation_lag: int = 1  # a pipeline at zero wakes when lag reaches this
    cooldown_seconds: float = 300  # idle time (no lag, in-flight, consumption) before zero
    concurrency: int = 8  # tasks one replica runs at once (spec.worker.concurrency)
    target_drain_seconds: float | None = None  # rate mode when set: drain the backlog within it
    smoothing_seconds: float = 120  # lag mode: lag and in-flight averaged over this window
    rate_window_seconds: float = 60  # rate mode: arrival rate measured over this window
    stale_seconds: float = 45  # a sample older than this is no data
    tolerance: float = 0.1  # changes within this fraction of the replicas are ignored
    scale_up_percent: float = 100  # up per period: max(this percent, scale_up_pods)
    scale_up_pods: int = 8
    scale_up_period_seconds: float = 15
    scale_down_stabilization_seconds: float = 30  # down to the window's highest recommendation
    scale_down_percent: float = 75  # down per period, at most this percent
    scale_down_period_seconds: float = 15
    paused: bool = False
    provider_aware: bool = True  # cap at what the provider serves while calls are refused
    max_replicas_when_limited: int | None = None  # upper bound of that cap
    provider_min_refused: int = 3  # refused calls in the window before it counts as limited
    provider_refused_fraction: float = 0.05  # and at least this share of the attempts
    provider_hold_seconds: float = 30  # no refusals this long: the cap grows again

    def __post_init__(self) -> None:
        drain = self.target_drain_seconds
        problems = [
            f"{name} {rule}"
            for name, rule, ok in (
                ("min_replicas", "must be ≥ 0", self.min_replicas >= 0),
                ("max_replicas", "must be ≥ min_replicas", self.min_replicas <= self.max_replicas),
                ("lag_per_replica", "must be ≥ 1", self.lag_per_replica >= 1),
                ("activation_lag", "must be ≥ 1", self.activation_lag >= 1),
                ("concurrency", "must be ≥ 1", self.concurrency >= 1),
                ("target_drain_seconds", "must be > 0", drain is None or drain > 0),
                ("tolerance", "must be in [0, 1)", 0 <= self.tolerance < 1),
                ("scale_up_percent", "must be ≥ 0", self.scale_up_percent >= 0),
                ("scale_up_pods", "must be ≥ 0", self.scale_up_pods >= 0),
                ("scale_down_percent", "must be 0..100", 0 <= self.scale_down_percent <= 100),
                (
                    "max_replicas_when_limited",
                    "must be ≥ 1",
                    self.max_replicas_when_limited is None or self.max_replicas_when_limited >= 1,
                ),
            )
            if not ok
        ]
        if problems:
            raise ValueError("invalid scaling policy: " + "; ".join(problems))

    @classmethod
    def from_spec(
        cls,
        scaling: specs.ScalingSpec,
        *,
        concurrency: int,
        annotations: Mapping[str, str] | None = None,
    ) -> ScalingPolicy:
        """The policy for a pipeline: its spec.scaling, spec.worker.concurrency, annotations.

        `targetDrainSeconds` switches to rate mode; `paused` (or the paused annotation) holds
        the replicas.
        """
        drain = scaling.targetDrainSeconds
        flagged = (annotations or {}).get(PAUSED_ANNOTATION, "").strip().lower() == "true"
        return cls(
            min_replicas=scaling.minReplicas,
            max_replicas=scaling.maxReplicas,
            lag_per_replica=scaling.lagPerReplica,
            activation_lag=scaling.activationLag,
            cooldown_seconds=float(scaling.cooldownSeconds),
            concurrency=concurrency,
            target_drain_seconds=None if drain is None else float(drain),
            stale_seconds=3.0 * scaling.pollSeconds,
            scale_down_stabilization_seconds=float(scaling.scaleDownStabilizationSeconds),
            paused=scaling.paused or flagged,
            provider_aware=scaling.provider.enabled,
            max_replicas_when_limited=scaling.provider.maxReplicasWhenLimited,
            provider_hold_seconds=max(30.0, 2.0 * scaling.pollSeconds),
        )


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """What the samples called for at `at`: all of it, and the part without the backlog."""

    at: float
    replicas: int  # arrivals (or busy workers) plus draining the backlog
    steady: int  # arrivals (or busy workers) only: what stays once the backlog is gone


@dataclasses.dataclass(frozen=True)
class History:
    """What `decide` remembers between calls: start with `History()`, keep the returned one.

    samples: valid readings within the smoothing window, oldest first.
    recommendations: those within the scale-down stabilization window, oldest first.
    scale_events: (at, change) of the decided changes within the rate-limit periods.
    last_active_at: the newest reading with lag, in-flight or consumed work.
    last_scale_at: when the decided replicas last changed.
    service_seconds: learned mean task duration (Little's law), kept across idle periods.
    provider_cap / provider_limited_at: the provider cap in force and when calls were last
    refused (see `rules._provider_cap`).
    """

    samples: tuple[Sample, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    scale_events: tuple[tuple[float, int], ...] = ()
    last_active_at: float | None = None
    last_scale_at: float | None = None
    service_seconds: float | None = None
    provider_cap: int | None = None  # replicas the model provider serves, while it is limited
    provider_limited_at: float | None = None  # the newest reading with refused calls


@dataclasses.dataclass(frozen=True)
class Decision:
    """The replicas to run, the rule that set them, the memory for next time, a message."""

    replicas: int
    reason: Reason
    history: History
    message: str
    recommendation: int | None = None  # before stabilization, cooldown, limits and bounds
