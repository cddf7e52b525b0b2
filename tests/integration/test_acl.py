"""The operator on a RocketMQ with ACL 2.0 authentication on: the autoscaler reads lag.

Cases: an anonymous admin client is refused (NO_PERMISSION), so authentication is really on; the
admin client built by `connections` for the pipeline's credentials reconciles its topic and
group, and the autoscaler's sample (`sampling.read_sample`) reads the exact lag of messages
published with the same credentials — before this, the autoscaler built its client without
credentials and a pipeline on such a broker held at NoData forever. In-flight work comes from
the data plane's TaskStore on the session's real Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from agentprod.broker.base import Outgoing
from agentprod.broker.rocketmq import RocketMQPublisher, configuration
from agentprod_operator import connections, specs
from agentprod_operator.rocketmq import remoting
from agentprod_operator.scaling import sampling
from agentprod_operator.scaling.models import Sample
from harness import paths
from harness.redis import RedisServer
from harness.rocketmq import CLUSTER, RocketMQ, RocketMQPorts, ensure_jars

ACCESS_KEY, SECRET_KEY = "agentprod-acl", "s3cret-for-tests"
TOPIC, GROUP, MESSAGES = "TopicAcl", "GID_ACL", 37


@pytest.fixture(scope="module")
def acl_rocketmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQ]:
    """A second RocketMQ (ports shifted clear of the session's) with authentication on."""
    auth = "org.apache.rocketmq.auth.authentication.provider"
    credentials = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    server = RocketMQ(
        home=tmp_path_factory.mktemp("rocketmq-acl"),
        lib=ensure_jars(cache=paths.cache_dir()),
        ports=RocketMQPorts.for_tests(shift=40),
        broker_extra={
            "authenticationEnabled": "true",
            "authenticationProvider": f"{auth}.DefaultAuthenticationProvider",
            "authenticationMetadataProvider": f"{auth}.LocalAuthenticationMetadataProvider",
            "initAuthenticationUser": json.dumps({"username": ACCESS_KEY, "password": SECRET_KEY}),
            "innerClientAuthenticationCredentials": json.dumps(credentials),
        },
    )
    server.start()
    yield server
    server.stop()


def pipeline(server: RocketMQ, redis_url: str) -> specs.AgentPipelineSpec:
    return specs.AgentPipelineSpec.model_validate(
        {
            "rocketmq": {
                "nameServer": server.namesrv_addr,
                "endpoint": server.endpoint,
                "credentialsSecret": "rocketmq-credentials",
            },
            "topics": {"request": {"name": TOPIC, "queues": 4}, "result": {"name": "TopicAclR"}},
            "consumerGroup": {"name": GROUP, "maxRetries": 3},
            "redis": {"url": redis_url},
            "worker": {"image": "agentprod:dev"},
        }
    )


async def publish(server: RocketMQ, count: int) -> None:
    publisher = RocketMQPublisher(
        config=configuration(
            endpoint=server.endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            namespace="",
            timeout_seconds=5,
        ),
        endpoint=server.endpoint,
        topics=(TOPIC,),
    )
    await publisher.start()
    try:
        for index in range(count):
            await publisher.send(
                Outgoing(topic=TOPIC, body=b'{"n": %d}' % index, key=str(index), tag="acl")
            )
    finally:
        await publisher.close()


def test_autoscaler_reads_lag_with_the_pipelines_credentials(
    acl_rocketmq: RocketMQ, redis_server: RedisServer
) -> None:
    spec = pipeline(acl_rocketmq, redis_server.url)
    signed = connections.AdminTarget(spec.rocketmq.nameServer, ACCESS_KEY, SECRET_KEY)

    async def scenario() -> tuple[str, Sample, Sample]:
        async with connections.default_admin(
            connections.AdminTarget(spec.rocketmq.nameServer)
        ) as anonymous:
            try:
                await anonymous.create_or_update_topic(cluster=CLUSTER, topic=TOPIC, queues=4)
                refusal = "accepted"
            except remoting.RemotingError as error:
                refusal = str(error)
            async with connections.default_admin(signed) as admin:
                await admin.create_or_update_topic(cluster=CLUSTER, topic=TOPIC, queues=4)
                await admin.create_or_update_group(cluster=CLUSTER, group=GROUP, max_retries=3)
                await asyncio.sleep(2)  # the proxy's route cache (1 s refresh in the harness)
                await publish(acl_rocketmq, MESSAGES)
                store = connections.task_store(redis_server.url, group=GROUP)
                try:
                    now = time.time()
                    read = await sampling.read_sample(
                        client=admin, store=store, spec=spec, readings=sampling.Readings(), now=now
                    )
                    blind = await sampling.read_sample(
                        client=anonymous,
                        store=store,
                        spec=spec,
                        readings=sampling.Readings(),
                        now=now,
                    )
                finally:
                    await store.close()
        return refusal, read, blind

    refusal, read, blind = asyncio.run(scenario())
    assert "NO_PERMISSION" in refusal  # authentication is really on
    assert read.lag == MESSAGES
    assert read.in_flight == 0
    assert blind.lag is None  # what the autoscaler saw before: no lag, so it held at NoData
