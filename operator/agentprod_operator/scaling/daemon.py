"""The autoscaler's loop for one pipeline (a kopf daemon): every `pollSeconds` read a sample
(`sampling`), ask the pure `rules.decide`, set the worker Deployment's replicas through its
scale subresource, and report in status, Events and metrics.

A failed read is passed to `decide` as a missing sample, which holds the replicas: a lag read
failure never scales to zero. RocketMQ and Redis are reached through `connections`, with the
pipeline's credentials; the daemon writes only its own condition (ScalingActive).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from agentprod import store as stores
from agentprod import tracing
from agentprod.console import state as console_state
from kubernetes_asyncio.client.exceptions import ApiException

from agentprod_operator import conditions, connections, specs
from agentprod_operator.conditions import Condition
from agentprod_operator.kube import Kube
from agentprod_operator.reconcile import workloads
from agentprod_operator.rocketmq import admin
from agentprod_operator.scaling import deletion, metrics, rules, sampling
from agentprod_operator.scaling.models import History, Sample, ScalingPolicy

log = logging.getLogger(__name__)


class _Clients:
    """The admin client and task store of one pipeline, rebuilt only when their target changes."""

    def __init__(self, admin_factory: connections.AdminFactory) -> None:
        self._admin_factory = admin_factory
        self.admin: admin.RocketMQAdmin | None = None
        self._admin_for: connections.AdminTarget | None = None
        self.store: stores.TaskStore | None = None
        self._store_for: tuple[str, str] | None = None

    async def refresh(self, kube: Kube, *, namespace: str, spec: specs.AgentPipelineSpec) -> None:
        target = await connections.admin_target(kube, namespace=namespace, spec=spec)
        if self.admin is None or target != self._admin_for:
            if self.admin is not None:
                await self.admin.close()
            self.admin, self._admin_for = self._admin_factory(target), target
        url = await connections.redis_url(kube, namespace=namespace, spec=spec)
        wanted = (url, spec.consumerGroup.name) if url else None
        if wanted != self._store_for:
            if self.store is not None:
                await self.store.close()
            self.store = connections.task_store(url, group=spec.consumerGroup.name) if url else None
            self._store_for = wanted

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
        if self.admin is not None:
            await self.admin.close()


async def run(
    *,
    name: str,
    namespace: str,
    body: Any,
    spec_view: Any,
    stopped: Any,
    kube: Kube,
    emit: Any,
    admin_factory: connections.AdminFactory = connections.default_admin,
) -> None:
    """Poll and scale until `stopped`; `spec_view` is kopf's live view of the spec."""
    history = History()
    readings = sampling.Readings()
    clients = _Clients(admin_factory)  # one connection for every poll of this pipeline
    try:
        while not stopped:
            spec = specs.AgentPipelineSpec.model_validate(dict(spec_view))
            await clients.refresh(kube, namespace=namespace, spec=spec)
            assert clients.admin is not None  # refresh always builds one
            with tracing.span(
                f"scale {namespace}/{name}",
                attributes={"k8s.namespace.name": namespace, "agentprod.pipeline": name},
            ):
                history = await _poll(
                    client=clients.admin,
                    store=clients.store,
                    name=name,
                    namespace=namespace,
                    body=body,
                    spec=spec,
                    kube=kube,
                    history=history,
                    readings=readings,
                    emit=emit,
                )
            await stopped.wait(spec.scaling.pollSeconds)
    finally:
        await clients.close()


async def _poll(
    *,
    client: admin.RocketMQAdmin,
    store: stores.TaskStore | None,
    name: str,
    namespace: str,
    body: Any,
    spec: specs.AgentPipelineSpec,
    kube: Kube,
    history: History,
    readings: sampling.Readings,
    emit: Any,
) -> History:
    deployment = await kube.deployment(namespace=namespace, name=workloads.name_for(name))
    if deployment is None:
        return history  # the reconcile handler creates it
    current = int(deployment["spec"].get("replicas") or 0)
    annotations = dict(body.get("metadata", {}).get("annotations") or {})
    policy = ScalingPolicy.from_spec(
        spec.scaling, concurrency=spec.worker.concurrency, annotations=annotations
    )
    now = time.time()
    sample = await sampling.read_sample(
        client=client, store=store, spec=spec, readings=readings, now=now
    )
    decision = rules.decide(
        policy=policy, samples=[sample], current_replicas=current, history=history, now=now
    )
    tracing.describe_scaling(
        lag=sample.lag,
        in_flight=sample.in_flight,
        current=current,
        desired=decision.replicas,
        reason=decision.reason.value,
    )
    labels = {"namespace": namespace, "pipeline": name}
    status = dict(body.get("status") or {})
    patch: dict[str, Any] = {
        "lag": sample.lag if sample.lag is not None else status.get("lag"),
        "inFlight": sample.in_flight if sample.in_flight is not None else status.get("inFlight"),
        "desiredReplicas": decision.replicas,
        "replicas": int((deployment.get("status") or {}).get("replicas") or 0),
    }
    # None once the cap is off and no signals are read: the patch then drops a stale block
    patch["provider"] = _provider_status(spec, sample, decision.history)
    if store is not None:  # before a scale-in: the ReplicaSet removes idle pods first
        await _mark_deletion_costs(kube, store=store, namespace=namespace, name=name, now=now)
    if decision.replicas != current:
        await kube.scale_deployment(
            namespace=namespace, name=workloads.name_for(name), replicas=decision.replicas
        )
        patch["lastScaleTime"] = _now()
        metrics.SCALE_EVENTS.labels(**labels).inc()
        emit("Scaled", f"worker replicas {current} → {decision.replicas}: {decision.message}")
    was, cap = history.provider_cap, decision.history.provider_cap
    if was is None and cap is not None:
        emit("ProviderLimited", f"model provider refuses calls: replicas capped at {cap}")
    elif was is not None and cap is None:
        emit("ProviderLimitLifted", "model provider no longer refuses calls: cap lifted")
    changed = status_merge_patch(status, patch)
    if changed:
        await kube.patch_pipeline_status(namespace=namespace, name=name, status=changed)
    await _report_condition(kube, name=name, namespace=namespace, body=body, decision=decision)
    for gauge, value in ((metrics.LAG, sample.lag), (metrics.IN_FLIGHT, sample.in_flight)):
        if value is not None:
            gauge.labels(**labels).set(value)
    dead = await sampling.dead_letters(client, group=spec.consumerGroup.name)
    if dead is not None:
        metrics.DEAD_LETTERS.labels(**labels).set(dead)
    _report_provider(labels, spec, sample, decision.history)
    metrics.DESIRED.labels(**labels).set(decision.replicas)
    metrics.CURRENT.labels(**labels).set(current)
    metrics.DECISIONS.labels(**labels, reason=decision.reason.value).inc()
    metrics.REASON.labels(**labels).state(decision.reason.value)
    if store is not None:  # the console's view of this pass (agentprod.console.state)
        await console_state.write_pipeline(
            store.client,
            namespace=namespace,
            name=name,
            snapshot=console_snapshot(patch, status, decision=decision, dead_letters=dead, now=now),
        )
    return decision.history


async def _mark_deletion_costs(
    kube: Kube, *, store: stores.TaskStore, namespace: str, name: str, now: float
) -> None:
    """Set each worker pod's pod-deletion-cost to its in-flight tasks (best effort)."""
    try:
        in_flight = await store.in_flight_by_pod(now=now)
        pods = await kube.pod_annotations(
            namespace=namespace,
            selector=workloads.selector_labels(name),
            annotation=deletion.ANNOTATION,
        )
    except (stores.StoreUnavailable, ApiException) as error:
        log.warning("deletion costs not updated: %s", error)
        return
    for pod, cost in deletion.deletion_costs(pods, in_flight).items():
        try:
            await kube.annotate_pod(
                namespace=namespace, name=pod, annotations={deletion.ANNOTATION: cost}
            )
        except ApiException as error:  # the pod went away meanwhile
            log.info("pod %s not annotated: %s", pod, error.reason)


def status_merge_patch(status: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that makes `status` show `fields` (pure): only the fields that
    differ; a field set to None is removed, and so is a key of a nested block that the new
    block no longer has (a merge patch would otherwise keep it, e.g. a lifted cap)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        old = status.get(key)
        if old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            value = {k: None for k in old if k not in value} | value
        out[key] = value
    return out


def console_snapshot(
    patch: dict[str, Any],
    status: dict[str, Any],
    *,
    decision: Any,
    dead_letters: int | None,
    now: float,
) -> dict[str, Any]:
    """What the console shows of one scaling pass (pure)."""
    return {
        "at": now,
        "lag": patch["lag"],
        "inFlight": patch["inFlight"],
        "replicas": patch["replicas"],
        "desiredReplicas": patch["desiredReplicas"],
        "reason": decision.reason.value,
        "message": decision.message,
        "deadLetters": dead_letters,
        "lastScaleTime": patch.get("lastScaleTime", status.get("lastScaleTime")),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
    }


def _provider_status(
    spec: specs.AgentPipelineSpec, sample: Sample, history: History
) -> dict[str, Any] | None:
    """status.provider: the cap in force and the model-side rates it was read from."""
    load = sample.provider
    if load is None and history.provider_cap is None:
        return None
    out: dict[str, Any] = {"limited": history.provider_cap is not None}
    if history.provider_cap is not None:
        out["cap"] = history.provider_cap
    if load is not None:
        out["windowSeconds"] = int(load.window_seconds)
        out["okPerMinute"] = round(load.per_minute(load.ok), 1)
        out["throttledPerMinute"] = round(load.per_minute(load.throttled), 1)
        out["limitedPerMinute"] = round(load.per_minute(load.limited), 1)
        out["tokensPerMinute"] = round(load.per_minute(load.tokens), 1)
    models = spec.agent.models
    if models is not None and models.requestsPerMinute:
        out["requestsPerMinuteBudget"] = models.requestsPerMinute
    if models is not None and models.tokensPerMinute:
        out["tokensPerMinuteBudget"] = models.tokensPerMinute
    return out


def _report_provider(
    labels: dict[str, str], spec: specs.AgentPipelineSpec, sample: Sample, history: History
) -> None:
    cap = history.provider_cap
    metrics.PROVIDER_LIMITED.labels(**labels).set(0 if cap is None else 1)
    metrics.PROVIDER_CAP.labels(**labels).set(spec.scaling.maxReplicas if cap is None else cap)
    load = sample.provider
    if load is None:
        return
    for outcome, count in (
        ("ok", load.ok),
        ("throttled", load.throttled),
        ("limited", load.limited),
    ):
        metrics.MODEL_CALLS.labels(**labels, outcome=outcome).set(load.per_minute(count))
    metrics.MODEL_TOKENS.labels(**labels).set(load.per_minute(load.tokens))


async def _report_condition(
    kube: Kube, *, name: str, namespace: str, body: Any, decision: Any
) -> None:
    """Apply ScalingActive (the one condition this daemon owns) when it changed."""
    current = list((body.get("status") or {}).get("conditions") or [])
    active = Condition(
        conditions.SCALING_ACTIVE,
        decision.reason.value != "paused",
        _camel(decision.reason.value),
        decision.message,
    )
    merged = conditions.merge(
        current, [active], now=_now(), generation=int(body["metadata"].get("generation", 0))
    )
    mine = conditions.owned(merged, conditions.SCALING_MANAGER)
    if mine != conditions.owned(current, conditions.SCALING_MANAGER):
        await kube.apply_pipeline_conditions(
            namespace=namespace, name=name, conditions=mine, manager=conditions.SCALING_MANAGER
        )


def _camel(reason: str) -> str:
    return "".join(part.capitalize() for part in reason.replace("_", "-").split("-"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
