"""The operator's autoscaler on the real stack: with no worker running (an idle pipeline
scaled to 0), 2,000 messages on the request topic and its `-high` twin (the lag sums both)
raise the worker Deployment's replicas to min(max, ceil(lag / lagPerReplica)) within two
polls (through its scale subresource), and the status, an Event and the operator's metrics
say why; once worker processes (outside the cluster, on the same topics and group) drain the
backlog it comes back down through the policy to `minReplicas: 0`. A model provider
answering 429 (the tests' loopback model server, real `agentprod api` and `agentprod worker`
processes running the chat agent) caps the replicas (`ProviderLimited`: condition, Event,
status.provider, metric) well below what the lag asks, and once the provider answers again
the cap lifts back to the lag's replicas; every task ends `done`.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from harness.apps import AgentprodProcess
from harness.redis import RedisServer
from redis import Redis

from tests.e2e.helpers import (
    OPERATOR_METRICS_PORT,
    Cluster,
    admin_call,
    publish,
    replicas,
    wait_for,
)
from tests.integration.helpers import post_tasks, wait_for_status
from tests.integration.llm_fakes import FaultyModelServer

MESSAGES = 2000
HIGH_MESSAGES = 400  # of them on the high-priority topic: the lag is the sum of both
MAX_REPLICAS = 8
LAG_PER_REPLICA = 400
POLL_SECONDS = 2
SLACK_SECONDS = 5  # a poll's own reads, the scale call, kubectl's view


def status(cluster: Cluster) -> dict[str, Any]:
    return dict((cluster.get("agentpipeline", "price-alerts") or {}).get("status") or {})


def operator_metrics() -> str:
    url = f"http://127.0.0.1:{OPERATOR_METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def _console_shows(
    cluster: Cluster, redis_server: RedisServer, tmp_path: Path, *, lag: int, desired: int
) -> None:
    """The web console (an API on the pipeline's Redis, in headless chromium) shows the lag
    and the replicas the operator just decided; a screenshot goes to .cache/console/."""
    from harness.browser import launch_flags, require_chromium
    from playwright.sync_api import expect, sync_playwright

    api = AgentprodProcess(
        command="api",
        env={
            "REDIS_URL": redis_server.url,
            "MQ_ENDPOINT": cluster.rocketmq.endpoint,
            "MQ_TOPIC_REQUEST": cluster.request_topic,
            "API_AUTH": "off",
        },
        log_dir=tmp_path,
        name="console-api",
    )
    try:
        api.wait_healthy()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                user_data_dir=str(tmp_path / "profile"),
                executable_path=require_chromium(),
                headless=True,
                args=launch_flags(),
            )
            page = browser.new_page()
            page.goto(f"{api.url}/console")
            pipeline = page.locator(f'[data-pipeline="{cluster.namespace}/price-alerts"]')
            expect(pipeline.locator('[data-field="lag"] b')).to_have_text(str(lag))
            expect(pipeline.locator('[data-field="replicas"] b')).to_contain_text(f"/ {desired}")
            shots = Path(__file__).parents[2] / ".cache" / "console"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "console-pipeline.png"), full_page=True)
            browser.close()
    finally:
        api.terminate()


def test_scales_up_on_lag_and_back_to_zero(
    cluster: Cluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    scaling = {
        "minReplicas": 0,
        "maxReplicas": MAX_REPLICAS,
        "lagPerReplica": LAG_PER_REPLICA,
        "pollSeconds": POLL_SECONDS,
        "cooldownSeconds": 6,
    }
    cluster.apply(cluster.manifest(scaling=scaling, redis={"url": redis_server.url}))
    cluster.wait_condition("price-alerts", "Ready", "True")
    wait_for(lambda: replicas(cluster) == 0, timeout=60, what="idle: down to 0 workers")

    high = f"{cluster.request_topic}-high"  # the priority: high tasks' topic counts too
    publish(cluster, MESSAGES - HIGH_MESSAGES)
    publish(cluster, HIGH_MESSAGES, topic=high)
    published = time.monotonic()
    stored = sum(
        admin_call(cluster, "max_offsets", topic).total for topic in (cluster.request_topic, high)
    )
    assert stored >= MESSAGES  # the producer retries a send that timed out: at least once
    expected = min(MAX_REPLICAS, math.ceil(stored / LAG_PER_REPLICA))
    wait_for(
        lambda: replicas(cluster) == expected,
        timeout=2 * POLL_SECONDS + SLACK_SECONDS,
        what=f"{expected} replicas for lag {stored} within two polls",
    )
    print(f"0 → {expected} replicas {time.monotonic() - published:.1f}s after publishing")
    wait_for(lambda: status(cluster).get("lag") == stored, timeout=30, what=f"lag {stored}")
    seen = status(cluster)
    assert seen["desiredReplicas"] == expected
    assert seen["lastScaleTime"]
    # the step from zero is an Activation; the poll after it, at the new replicas, a Target
    wait_for(
        lambda: (
            (cluster.condition("price-alerts", "ScalingActive") or {}).get("reason") == "Target"
        ),
        timeout=2 * POLL_SECONDS + SLACK_SECONDS,
        what="ScalingActive at Target the poll after the activation",
    )
    active = cluster.condition("price-alerts", "ScalingActive")
    assert active is not None
    assert (active["status"], active["reason"]) == ("True", "Target"), active
    assert f"→ {expected} (lag mode: lag " in active["message"]  # the rule and its inputs
    events = cluster.plane.kubectl("get", "events", "-n", cluster.namespace, "-o", "json").stdout
    assert f"→ {expected}: " in events  # the Scaled event of the step that reached it
    labels = f'namespace="{cluster.namespace}",pipeline="price-alerts"'
    exported = operator_metrics()
    assert f"agentprod_pipeline_lag{{{labels}}} {float(stored)}" in exported
    assert f"agentprod_pipeline_desired_replicas{{{labels}}} {float(expected)}" in exported
    state = 'agentprod_pipeline_scaling_reason="target"'
    assert f"agentprod_pipeline_scaling_reason{{{state},{labels}}} 1.0" in exported
    _console_shows(cluster, redis_server, tmp_path, lag=stored, desired=expected)

    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": cluster.rocketmq.endpoint,
        "MQ_TOPIC_REQUEST": cluster.request_topic,
        "MQ_TOPIC_RESULT": cluster.result_topic,
        "MQ_GROUP_AGENT": cluster.group,
        "AGENT": "echo",
        "AGENTPROD_TEST_AGENTS": "true",
        "WORKER_CONCURRENCY": "32",
        "LOG_LEVEL": "WARNING",
    }
    workers = [
        AgentprodProcess(command="worker", env=env, log_dir=tmp_path, name=f"w{i}")
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_healthy()
        steps: list[int] = []

        def observe() -> int:
            now = replicas(cluster)
            if not steps or steps[-1] != now:
                steps.append(now)
            return now

        def drained() -> bool:
            observe()
            return status(cluster).get("lag") == 0

        def at_zero() -> bool:
            return observe() == 0

        wait_for(drained, timeout=120, what="backlog drained")
        wait_for(at_zero, timeout=180, what="scaled back to minReplicas 0")
        assert steps[0] == expected
        assert len(steps) >= 3, f"went straight to zero: {steps}"  # through the policy
    finally:
        for worker in workers:
            assert worker.terminate() == 0


@pytest.mark.timeout(480)
def test_a_provider_at_its_limit_caps_the_replicas_until_it_lifts(
    cluster: Cluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    scaling = {
        "minReplicas": 0,
        "maxReplicas": MAX_REPLICAS,
        "lagPerReplica": 10,
        "pollSeconds": POLL_SECONDS,
        "cooldownSeconds": 6,
    }
    cluster.apply(cluster.manifest(scaling=scaling, redis={"url": redis_server.url}))
    cluster.wait_condition("price-alerts", "Ready", "True")
    model = FaultyModelServer()
    model.start()
    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": cluster.rocketmq.endpoint,
        "MQ_NAMESRV": cluster.rocketmq.namesrv_addr,
        "MQ_TOPIC_REQUEST": cluster.request_topic,
        "MQ_TOPIC_RESULT": cluster.result_topic,
        "MQ_GROUP_AGENT": cluster.group,
        "API_AUTH": "off",
        "AGENT": "chat",
        "WORKER_CONCURRENCY": "8",
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": "test",
        "LLM_MODEL_FAST": "fake-fast",
        "LLM_CACHE_TTL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    api = AgentprodProcess(command="api", env=env, log_dir=tmp_path, name="api")
    worker = AgentprodProcess(command="worker", env=env, log_dir=tmp_path, name="worker")
    run = uuid.uuid4().hex[:8]
    try:
        api.wait_healthy()
        worker.wait_healthy()
        # 120 tasks, each refused twice (429 + Retry-After 1 s) before the model answers (the
        # fixed-width number keeps one prompt from containing another: calls() matches parts)
        bodies: list[dict[str, object]] = [
            {"user_id": "u", "content": f"[429x2:1] {run} {i:03d}"} for i in range(120)
        ]
        posted = time.monotonic()
        task_ids = asyncio.run(post_tasks(api.url, bodies))
        capped = wait_for(
            lambda: (
                (status(cluster).get("provider") or {}).get("limited") is True and status(cluster)
            ),
            timeout=60,
            what="status.provider.limited",
        )
        cap = capped["provider"]["cap"]
        assert cap < MAX_REPLICAS, capped  # the lag alone asks for the maximum
        assert capped["provider"]["throttledPerMinute"] > 0, capped
        wait_for(lambda: replicas(cluster) <= cap, timeout=30, what=f"replicas capped at {cap}")
        wait_for(
            lambda: (
                (cluster.condition("price-alerts", "ScalingActive") or {}).get("reason")
                == "ProviderLimited"
            ),
            timeout=30,
            what="ScalingActive reason ProviderLimited",
        )
        exported = operator_metrics()
        labels = f'namespace="{cluster.namespace}",pipeline="price-alerts"'
        assert f"agentprod_pipeline_provider_limited{{{labels}}} 1.0" in exported
        events = cluster.plane.kubectl(
            "get", "events", "-n", cluster.namespace, "-o", "json"
        ).stdout
        assert "ProviderLimited" in events
        # every task gets through its 429s: nothing lost, nothing repeated
        client = Redis.from_url(redis_server.url, decode_responses=True)
        seen = wait_for_status(client, task_ids, {"done", "failed"}, timeout=240)
        assert set(seen) == {"done"}, {s: seen.count(s) for s in set(seen)}
        refused = sum(len(model.calls(str(body["content"]))) - 1 for body in bodies)
        assert refused == 2 * len(bodies)  # 2 refusals and one answer per task, no more
        drained = time.monotonic() - posted
        # the provider answers again: the cap lifts (the Event), back to what the lag asks
        wait_for(
            lambda: (
                "ProviderLimitLifted"
                in cluster.plane.kubectl(
                    "get", "events", "-n", cluster.namespace, "-o", "json"
                ).stdout
            ),
            timeout=120,
            what="the cap lifted",
        )
        # switched off, the cap's status block goes (a merge patch alone would leave it)
        cluster.apply(
            cluster.manifest(
                scaling=scaling | {"provider": {"enabled": False}}, redis={"url": redis_server.url}
            )
        )
        wait_for(lambda: "provider" not in status(cluster), timeout=30, what="no status.provider")
        print(
            f"provider cap {cap} (lag alone: {MAX_REPLICAS}); {refused} 429s; "
            f"{len(bodies)} tasks done {drained:.1f}s after posting",
            flush=True,
        )
    finally:
        assert worker.terminate() == 0
        api.terminate()
        model.stop()
