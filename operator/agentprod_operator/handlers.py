"""The kopf handlers of AgentPipeline — thin: parse the spec, call `reconcile.executor`, write
status.

Handlers are registered into a registry built from the operator config (no import-time
globals). Status fields are written through kopf's patch (one PATCH per handler run), the conditions
this handler owns by server-side apply (`conditions.OWNED_BY`), so the scaling daemon's
ScalingActive is never overwritten; kopf keeps its progress in `status.kopf` and the last
handled spec in one annotation.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import kopf
import prometheus_client
from agentprod import tracing
from pydantic import ValidationError

from agentprod_operator import conditions, connections, crds, kube, specs
from agentprod_operator.reconcile import executor, plans
from agentprod_operator.rocketmq.remoting import RemotingError
from agentprod_operator.scaling import daemon
from agentprod_operator.settings import OperatorConfig

RESOURCE = (crds.GROUP, crds.VERSION, crds.PLURAL)


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.persistence.finalizer = config.finalizer
        settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
        settings.posting.level = logging.WARNING  # our own events only, not every log line
        settings.watching.server_timeout = 60
        settings.watching.client_timeout = 90
        settings.networking.request_timeout = 30
        memo["kube"] = kube.Kube(await kube.connect())
        memo["failures"] = {}
        if config.metrics_port:
            prometheus_client.start_http_server(config.metrics_port)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        await memo["kube"].close()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        import os

        if os.environ.get("KUBECONFIG") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return kopf.login_with_kubeconfig(**kwargs)
        return kopf.login_with_service_account(**kwargs)

    @kopf.on.resume(*RESOURCE, id="reconcile", registry=registry)
    @kopf.on.create(*RESOURCE, id="reconcile", registry=registry)
    @kopf.on.update(*RESOURCE, id="reconcile", field="spec", registry=registry)
    async def changed(**kwargs: Any) -> None:
        with _reconcile_span(kwargs, trigger="change"):
            await _reconcile(config, force=True, **kwargs)

    @kopf.timer(
        *RESOURCE,
        id="periodic",
        interval=config.reconcile_interval_seconds,
        initial_delay=config.reconcile_interval_seconds,
        registry=registry,
    )
    async def periodic(**kwargs: Any) -> None:
        with _reconcile_span(kwargs, trigger="timer"):
            await _reconcile(config, force=False, **kwargs)

    @kopf.daemon(
        *RESOURCE, id="autoscale", cancellation_timeout=10, initial_delay=1.0, registry=registry
    )
    async def autoscale(**kwargs: Any) -> None:
        body: kopf.Body = kwargs["body"]
        name: str = kwargs["name"]
        namespace: str = kwargs["namespace"]

        def emit(reason: str, message: str) -> None:
            kopf.event(body, type="Normal", reason=reason, message=message)

        await daemon.run(
            name=name,
            namespace=namespace,
            body=body,
            spec_view=kwargs["spec"],
            stopped=kwargs["stopped"],
            kube=kwargs["memo"]["kube"],
            emit=emit,
        )

    @kopf.on.delete(*RESOURCE, id="cleanup", registry=registry)
    async def deleted(**kwargs: Any) -> None:
        await _delete(config, **kwargs)

    return registry


def _reconcile_span(kwargs: dict[str, Any], *, trigger: str) -> Any:
    """One span per reconcile pass of one pipeline (a root: nothing upstream carries a trace)."""
    return tracing.span(
        f"reconcile {kwargs['namespace']}/{kwargs['name']}",
        attributes={
            "k8s.namespace.name": kwargs["namespace"],
            "agentprod.pipeline": kwargs["name"],
            "agentprod.trigger": trigger,
        },
    )


async def _reconcile(
    config: OperatorConfig,
    *,
    force: bool,
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: logging.Logger,
    **_: Any,
) -> None:
    generation = int(body.metadata.get("generation") or 0)
    try:
        parsed = specs.AgentPipelineSpec.model_validate(dict(spec))
    except ValidationError as error:
        await memo["kube"].apply_pipeline_conditions(
            namespace=namespace,
            name=name,
            conditions=[
                {
                    "type": conditions.READY,
                    "status": "False",
                    "reason": "InvalidSpec",
                    "message": str(error),
                    "observedGeneration": generation,
                    "lastTransitionTime": _now(),
                }
            ],
            manager=conditions.RECONCILE_MANAGER,
        )
        raise kopf.PermanentError(f"invalid spec: {error}") from error
    failures: dict[str, tuple[int, float]] = memo["failures"]
    uid = str(body.metadata.uid)
    count, next_try = failures.get(uid, (0, 0.0))
    if not force and time.monotonic() < next_try:
        return  # backing off after RocketMQ failures
    outcome = await executor.reconcile(
        name=name,
        namespace=namespace,
        generation=generation,
        spec=parsed,
        status=dict(status),
        owner=lambda obj: kopf.append_owner_reference(obj, owner=body),
        kube=memo["kube"],
        admin_factory=connections.default_admin,
        now=_now(),
    )
    if outcome.rocketmq_ok:
        failures.pop(uid, None)
    else:
        count += 1
        delay = plans.backoff_seconds(count, base=config.reconcile_interval_seconds / 2)
        failures[uid] = (count, time.monotonic() + delay)
        logger.warning("RocketMQ unavailable (attempt %d); next try in %.0fs", count, delay)
    merged = outcome.status.pop("conditions")
    if merged != status.get("conditions"):
        await memo["kube"].apply_pipeline_conditions(
            namespace=namespace,
            name=name,
            conditions=conditions.owned(merged, conditions.RECONCILE_MANAGER),
            manager=conditions.RECONCILE_MANAGER,
        )
    for key, value in outcome.status.items():
        if status.get(key) != value:  # unchanged status is not written: no patch storms
            patch.status[key] = value
    for event in outcome.events:
        kopf.event(
            body,
            type="Warning" if event.warning else "Normal",
            reason=event.reason,
            message=event.message,
        )


async def _delete(
    config: OperatorConfig,
    *,
    body: kopf.Body,
    spec: kopf.Spec,
    namespace: str,
    retry: int,
    memo: kopf.Memo,
    logger: logging.Logger,
    **_: Any,
) -> None:
    try:
        parsed = specs.AgentPipelineSpec.model_validate(dict(spec))
    except ValidationError:
        return  # nothing was ever created for an invalid spec
    if parsed.deletionPolicy is specs.DeletionPolicy.RETAIN:
        logger.info("deletionPolicy Retain: topics and group kept")
        return
    target = await connections.admin_target(memo["kube"], namespace=namespace, spec=parsed)
    admin = connections.default_admin(target)
    try:
        for topic in parsed.topics.all:
            await admin.delete_topic(cluster=parsed.rocketmq.cluster, topic=topic.name)
        await admin.delete_group(cluster=parsed.rocketmq.cluster, group=parsed.consumerGroup.name)
    except RemotingError as error:
        if retry + 1 < config.delete_attempts:
            raise kopf.TemporaryError(
                f"cleanup failed: {error}", delay=config.delete_retry_seconds
            ) from error
        kopf.warn(
            body,
            reason="CleanupAbandoned",
            message=f"gave up deleting topics and group after {retry + 1} attempts: {error}",
        )
        return
    finally:
        await admin.close()
    kopf.info(body, reason="Deleted", message="topics and consumer group deleted")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
