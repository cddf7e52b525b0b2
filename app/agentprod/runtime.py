"""Wiring: build the real (RocketMQ + Redis) or embedded (memory + fakeredis) services and run
the API, the worker, or both in one process. The CLI calls these; tests start the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import prometheus_client
import uvicorn
import uvloop
from pydantic import ValidationError

from agentprod import dead_letters, health, keys, webhooks
from agentprod import store as stores
from agentprod.agents import registry
from agentprod.agents.registry import AgentPool
from agentprod.api.services import Services
from agentprod.broker import rocketmq
from agentprod.broker.base import Consumer, Publisher
from agentprod.broker.memory import MemoryBroker
from agentprod.settings import ConfigurationError, Settings
from agentprod.worker import Worker, WorkerOptions

if TYPE_CHECKING:  # the API's modules (FastAPI) load only in the processes that serve it
    from fastapi import FastAPI

log = logging.getLogger(__name__)

#: Allocations between young-generation collections (CPython's default is 700). A request
#: allocates hundreds of short-lived objects, so the default ran the cyclic collector every
#: few requests: 13 % of the API's main thread in the profile (docs/benchmarks.md).
GC_YOUNG_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Move what start-up built out of the collector's way and collect young objects rarely."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def rocketmq_config(settings: Settings) -> Any:
    return rocketmq.configuration(
        endpoint=settings.mq_endpoint,
        access_key=settings.mq_access_key,
        secret_key=settings.mq_secret_key,
        namespace=settings.mq_namespace,
        timeout_seconds=settings.mq_request_timeout_seconds,
    )


def real_services(settings: Settings, *, topics: tuple[str, ...]) -> Services:
    return Services(
        settings=settings,
        store=stores.TaskStore(
            stores.connect(settings.redis_dsn),
            group=settings.mq_group_agent,
            index_ttl_seconds=settings.task_pending_ttl_seconds,
        ),
        publisher=rocketmq.RocketMQPublisher(
            config=rocketmq_config(settings), endpoint=settings.mq_endpoint, topics=topics
        ),
        limiter=stores.RequestLimiter(settings.redis_dsn),
    )


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        result_topic=settings.mq_topic_result,
        concurrency=settings.worker_concurrency,
        invisible_seconds=settings.worker_invisible_seconds,
        max_attempts=settings.max_attempts,
        retry_backoff_seconds=settings.worker_retry_backoff_seconds,
        shutdown_grace_seconds=settings.worker_shutdown_grace_seconds,
        result_ttl_seconds=settings.task_result_ttl_seconds,
        task_timeout_seconds=settings.worker_task_timeout_seconds,
        max_lost_attempts=settings.worker_max_lost_attempts,
        priority_slots=settings.worker_priority_slots,
        receive_wait_seconds=settings.worker_await_seconds + 1.0,
    )


def run_api(settings: Settings) -> None:
    """`agentprod api`: the HTTP API against RocketMQ and Redis."""
    services = real_services(
        settings, topics=(settings.mq_topic_request, settings.mq_topic_request_priority)
    )
    from agentprod.api import create_app

    app = create_app(services)
    if settings.api_auth == "off":
        log.warning("API_AUTH=off: no API keys are checked, every caller is tenant 'public'")
    if settings.api_metrics_port:
        prometheus_client.start_http_server(settings.api_metrics_port, addr=settings.api_host)
    _tune_gc()
    _serve(app, settings, port=settings.api_port)


def run_dev(settings: Settings) -> None:
    """`agentprod dev`: API and worker in one process on the embedded broker and store."""
    broker = MemoryBroker(max_retries=settings.mq_max_retries)
    store = stores.TaskStore(
        stores.embedded(),
        group=settings.mq_group_agent,
        index_ttl_seconds=settings.task_pending_ttl_seconds,
    )
    services = Services(settings=settings, store=store, publisher=broker.publisher())
    consumer, priority_consumer = (
        broker.consumer(
            group=settings.mq_group_agent, topic=topic, await_seconds=settings.worker_await_seconds
        )
        for topic in (settings.mq_topic_request, settings.mq_topic_request_priority)
    )

    @contextlib.asynccontextmanager
    async def embedded_worker() -> AsyncIterator[None]:
        worker = _worker(
            settings,
            consumer=consumer,
            priority_consumer=priority_consumer,
            publisher=broker.publisher(),
            store=store,
        )
        stop = asyncio.Event()
        await consumer.start()
        running = asyncio.create_task(worker.run(stop))
        log.info(
            "embedded worker running (agent %s, concurrency %d)",
            settings.agent,
            settings.worker_concurrency,
        )
        try:
            yield
        finally:
            stop.set()
            await running

    from agentprod.api import create_app

    app = create_app(services, background=embedded_worker)
    _serve(app, settings, port=settings.api_port)


def run_worker(settings: Settings) -> int:
    """`agentprod worker`: consume until SIGTERM/SIGINT, drain, exit 0."""
    _tune_gc()
    return uvloop.run(_worker_main(settings))


def _consumer(settings: Settings, group: str, topic: str) -> rocketmq.RocketMQConsumer:
    return rocketmq.RocketMQConsumer(
        config=rocketmq_config(settings),
        endpoint=settings.mq_endpoint,
        group=group,
        topic=topic,
        await_seconds=settings.worker_await_seconds,
    )


async def _worker_main(settings: Settings) -> int:
    services = real_services(settings, topics=(settings.mq_topic_result,))
    consumer = _consumer(settings, settings.mq_group_agent, settings.mq_topic_request)
    priority_consumer = _consumer(
        settings, settings.mq_group_agent, settings.mq_topic_request_priority
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    callbacks = webhooks.CallbackSender(
        store=services.store, options=webhooks.options_from(settings)
    )
    worker = _worker(
        settings,
        consumer=consumer,
        priority_consumer=priority_consumer,
        publisher=services.publisher,
        store=services.store,
        callbacks=callbacks,
    )
    dead_consumer = _consumer(
        settings,
        keys.dead_letter_group(settings.mq_group_agent),
        f"%DLQ%{settings.mq_group_agent}",
    )
    settler = dead_letters.DeadLetterSettler(
        consumer=dead_consumer,
        publisher=services.publisher,
        store=services.store,
        result_topic=settings.mq_topic_result,
        max_attempts=settings.max_attempts,
        result_ttl_seconds=settings.task_result_ttl_seconds,
        callbacks=callbacks,
    )
    async with health.serving(settings, worker):
        await _start_with_retry(consumer.start, stop, what="consumer")
        await _start_with_retry(services.publisher.start, stop, what="producer")
        if not stop.is_set():
            log.info(
                "worker consuming %s and %s as %s (agent %s, concurrency %d)",
                settings.mq_topic_request_priority,
                settings.mq_topic_request,
                settings.mq_group_agent,
                settings.agent,
                settings.worker_concurrency,
            )
            settling = (
                asyncio.create_task(settler.run(stop)) if settings.worker_dead_letters else None
            )
            await worker.run(stop)
            if settling is not None:
                await settling
    await dead_consumer.close()
    await priority_consumer.close()
    await consumer.close()
    await services.publisher.close()
    await services.store.close()
    log.info("worker stopped")
    return 0


def agent_pool(settings: Settings, **runtime_config: Any) -> AgentPool:
    """The worker's agents, with the default one built: a bad AGENT or AGENT_CONFIG raises
    `ConfigurationError` naming the variable (at start, not on the first task)."""
    name = settings.agent
    try:
        agents = AgentPool(
            default=name,
            config=settings.agent_config | runtime_config,
            test_agents=settings.test_agents,
        )
        agents.get(None)
    except (registry.UnknownAgent, registry.DisabledAgent) as error:
        raise ConfigurationError(f"invalid configuration: AGENT: {error}") from None
    except ValidationError as error:
        raise ConfigurationError(
            f"invalid configuration: AGENT_CONFIG (for agent {name}): {registry.describe(error)}"
        ) from None
    except ValueError as error:  # the agent refused its configuration (e.g. a model setting)
        raise ConfigurationError(f"invalid configuration for AGENT={name}: {error}") from None
    return agents


def check_agent(settings: Settings) -> None:
    """Fail fast (ConfigurationError) when AGENT/AGENT_CONFIG cannot make the worker's agent."""
    agent_pool(settings)


def _worker(
    settings: Settings,
    *,
    consumer: Consumer,
    priority_consumer: Consumer,
    publisher: Publisher,
    store: stores.TaskStore,
    callbacks: webhooks.CallbackSender | None = None,
) -> Worker:
    """The worker; `callbacks` is the webhook sender (one per process, shared with the
    dead-letter settler), made here when not given."""
    # The LLM agents share the store's Redis pool (real, or the embedded one of `agentprod dev`).
    agents = agent_pool(settings, redis_client=store.client)
    return Worker(
        consumer=consumer,
        publisher=publisher,
        store=store,
        agents=agents,
        options=worker_options(settings),
        priority_consumer=priority_consumer,
        callbacks=callbacks
        or webhooks.CallbackSender(store=store, options=webhooks.options_from(settings)),
    )


async def _start_with_retry(start: Callable[[], Any], stop: asyncio.Event, *, what: str) -> None:
    delay = 1.0
    while not stop.is_set():
        try:
            await start()
            return
        except Exception as error:
            log.warning("%s start failed (retrying in %.0fs): %s", what, delay, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 30.0)


def _serve(app: FastAPI, settings: Settings, *, port: int) -> None:
    uvicorn.run(
        app,
        host=settings.api_host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        log_config=None,  # uvicorn's loggers go through agentprod.logs (one line format)
        ws="none",  # no WebSocket routes: the websockets library is never loaded
    )
