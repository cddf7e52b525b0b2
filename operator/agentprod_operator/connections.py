"""The one way the operator reaches a pipeline's RocketMQ and Redis.

Both the reconcile executor and the autoscaler build their RocketMQ admin client here, with the
pipeline's `credentialsSecret` (on a broker with ACL every call needs it), and the autoscaler
reads in-flight work through the data plane's own `TaskStore`, the only Redis client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from agentprod import store as stores

from agentprod_operator import kube, specs
from agentprod_operator.rocketmq import admin

ADMIN_TIMEOUT_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class AdminTarget:
    """What an admin client is built for: name servers and credentials (equal → reuse it)."""

    name_servers: str
    access_key: str = ""
    secret_key: str = ""


#: Builds the admin client for a target; a parameter so tests can count or replace it.
AdminFactory = Callable[[AdminTarget], admin.RocketMQAdmin]


def default_admin(target: AdminTarget) -> admin.RocketMQAdmin:
    return admin.RocketMQAdmin(
        name_servers=target.name_servers,
        access_key=target.access_key,
        secret_key=target.secret_key,
        timeout=ADMIN_TIMEOUT_SECONDS,
    )


async def admin_target(
    client: kube.Kube, *, namespace: str, spec: specs.AgentPipelineSpec
) -> AdminTarget:
    """The pipeline's name servers with the keys of its credentialsSecret (empty without one)."""
    secret = spec.rocketmq.credentialsSecret
    if not secret:
        return AdminTarget(spec.rocketmq.nameServer)
    access = await client.secret_value(namespace=namespace, name=secret, key="accessKey")
    secret_key = await client.secret_value(namespace=namespace, name=secret, key="secretKey")
    return AdminTarget(spec.rocketmq.nameServer, access or "", secret_key or "")


async def redis_url(
    client: kube.Kube, *, namespace: str, spec: specs.AgentPipelineSpec
) -> str | None:
    """The pipeline's Redis URL, from the spec or its secretRef; None when neither is set."""
    if spec.redis.url:
        return spec.redis.url
    ref = spec.redis.secretRef
    if ref is None:
        return None
    return await client.secret_value(namespace=namespace, name=ref.name, key=ref.key)


def task_store(url: str, *, group: str) -> stores.TaskStore:
    """The data plane's store for the pipeline's consumer group (in-flight work)."""
    return stores.TaskStore(stores.connect(url), group=group)
