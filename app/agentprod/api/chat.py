"""The agent layer's HTTP face (seed 002): chat, batch, multi-agent, models, health, stats.

Every model call runs in a worker: `POST /chat` submits a `chat` task exactly like `POST /tasks`
and waits for its outcome up to `wait_seconds` (then 202 with the id to poll at
`/tasks/{task_id}`); `POST /chat/multi-agent` does the same with a `planner` task;
`POST /chat/batch` submits up to `MAX_BATCH` and answers 202 with the ids. `GET /models` reads
the configuration only; `GET /stats` and `GET /cache/stats` read what the workers recorded in
Redis. No model configured → 503 naming the variable to set.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agentprod.api import errors, identity, tasks
from agentprod.api.services import Services
from agentprod.llm import caching, ledger
from agentprod.llm.config import LLMSettings, NotConfigured, load_llm_settings
from agentprod.models import Priority, TaskAccepted, TaskRecord, TaskRequest

MAX_BATCH = 100
DEFAULT_WAIT_SECONDS = 30.0
MAX_WAIT_SECONDS = 120.0
STATS_SCAN_LIMIT = 10_000
READY_CHECK_TIMEOUT_SECONDS = 2.0


class ChatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # no stripping: the schema says what is accepted

    user_id: str = Field(default="anonymous", min_length=1, max_length=128)
    model: str | None = Field(default=None, description="A configured model id (wins routing).")
    task_type: str | None = Field(
        default=None, max_length=32, description="simple | complex (routing hint)."
    )
    system: str | None = Field(default=None, max_length=8000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    cache: bool | None = Field(
        default=None, description="true: cache even when not deterministic; false: bypass."
    )
    stream: bool | None = Field(
        default=None,
        description="true: stream the answer as `tokens` events (GET /tasks/{id}/events).",
    )
    callback_url: str | None = Field(
        default=None, max_length=2048, description="Where a worker POSTs the signed result."
    )
    priority: Priority = Field(
        default=Priority.NORMAL,
        description="`high`: workers take the task before normal ones (as POST /tasks).",
    )

    def metadata(self) -> dict[str, Any]:
        return self.model_dump(exclude={"user_id", "callback_url", "priority"}, exclude_none=True)


class ChatBody(ChatOptions):
    query: str = Field(min_length=1, description="The user's message.")
    wait_seconds: float = Field(default=DEFAULT_WAIT_SECONDS, ge=0, le=MAX_WAIT_SECONDS)


class BatchBody(ChatOptions):
    queries: list[str] = Field(min_length=1, max_length=MAX_BATCH)


class BatchAccepted(BaseModel):
    task_ids: list[str]
    count: int


#: /chat and /chat/multi-agent: 200 with the answer, 202 still running, 502 the agent failed.
_ANSWERED = errors.responses(409, body=True) | {
    202: {"description": "Not finished within wait_seconds: poll /tasks/{task_id}"},
    502: {"description": "The agent failed (its error in the body)"},
}


def router(services: Services, *, llm: LLMSettings | None = None) -> APIRouter:  # None: env
    routes = APIRouter()
    llm_settings = llm or load_llm_settings()
    cache = caching.ResponseCache(
        services.store.client,
        ttl_seconds=llm_settings.llm_cache_ttl_seconds,
        max_entries=llm_settings.llm_cache_max_entries,
    )
    usage = ledger.Ledger(services.store.client)

    def configured(body: ChatOptions) -> None:
        try:
            llm_settings.require()
        except NotConfigured as error:
            raise errors.Unavailable("model", str(error)) from None
        if body.model is not None and body.model not in llm_settings.models:
            known = ", ".join(llm_settings.models)
            raise errors.ClientError(
                422, "model", f"model {body.model!r} is not configured; known: {known}", "model"
            )

    async def submit(
        agent: str, query: str, body: ChatOptions, who: identity.Caller, key: str | None
    ) -> str:
        request = TaskRequest(
            user_id=body.user_id,
            content=query,
            agent=agent,
            metadata=body.metadata(),
            callback_url=body.callback_url,
            priority=body.priority,
        )
        # The same checks and two-phase submission as POST /tasks (api/tasks.py).
        tasks.check_request(request, services.settings)
        accepted = await tasks.accept(services, request, key, who)
        if not isinstance(accepted, TaskAccepted):  # pragma: no cover - accept answers models
            raise errors.ClientError(409, "Idempotency-Key", "request not accepted", "conflict")
        return accepted.task_id

    async def answered(agent: str, body: ChatBody, who: identity.Caller, key: str | None) -> Any:
        configured(body)
        task_id = await submit(agent, body.query, body, who, key)
        record = await _wait(services, task_id, body.wait_seconds)
        if record is None or not record.status.finished:
            return JSONResponse(
                {
                    "task_id": task_id,
                    "status": record.status.value if record else "queued",
                    "poll": f"/tasks/{task_id}",
                },
                status_code=202,
            )
        if record.status.value == "failed":
            return JSONResponse(
                {"task_id": task_id, "status": "failed", "error": record.error}, status_code=502
            )
        if record.status.value == "cancelled":
            return JSONResponse(
                {"task_id": task_id, "status": "cancelled", "error": record.error}, status_code=409
            )
        result = record.result if isinstance(record.result, dict) else {"result": record.result}
        return {"task_id": task_id, "status": record.status.value, **result}

    @routes.post("/chat", responses=_ANSWERED)
    async def chat(
        body: ChatBody,
        who: Annotated[identity.Caller, Depends(identity.caller)],
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=tasks.IDEMPOTENCY_KEY_MAX)
        ] = None,
    ) -> Any:
        """One answer from the `chat` agent, waited for up to `wait_seconds` (else 202 + id)."""
        return await answered("chat", body, who, idempotency_key)

    @routes.post("/chat/multi-agent", responses=_ANSWERED)
    async def multi_agent(
        body: ChatBody,
        who: Annotated[identity.Caller, Depends(identity.caller)],
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=tasks.IDEMPOTENCY_KEY_MAX)
        ] = None,
    ) -> Any:
        """Plan → execute tools → final answer (the `planner` agent), waited for like /chat."""
        return await answered("planner", body, who, idempotency_key)

    @routes.post(
        "/chat/batch",
        status_code=202,
        response_model=BatchAccepted,
        responses=errors.responses(409, body=True),
    )
    async def batch(
        body: BatchBody, who: Annotated[identity.Caller, Depends(identity.caller)]
    ) -> BatchAccepted:
        """Submit up to 100 `chat` tasks at once; poll each id at /tasks/{task_id}."""
        configured(body)
        ids = [await submit("chat", query, body, who, None) for query in body.queries]
        return BatchAccepted(task_ids=ids, count=len(ids))

    @routes.get("/models", responses=errors.responses(), dependencies=[Depends(identity.caller)])
    async def models() -> dict[str, Any]:
        """The configured tiers, model ids and prices (from the environment, never from code)."""
        return llm_settings.describe()

    @routes.get("/health", responses=errors.responses(), dependencies=[Depends(identity.caller)])
    async def health() -> JSONResponse:
        """Like /readyz (Redis, RocketMQ), plus whether a model is configured."""
        checks = dict(
            await asyncio.gather(
                _probe("redis", services.store.ping()),
                _probe("rocketmq", services.publisher.check()),
            )
        )
        ready = all(check["ok"] for check in checks.values())
        try:
            llm_settings.require()
            model: dict[str, Any] = {"configured": True, "tiers": llm_settings.describe()["tiers"]}
        except NotConfigured as error:
            model = {"configured": False, "error": str(error)}
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": checks, "model": model},
            status_code=200 if ready else 503,
        )

    @routes.get(
        "/cache/stats", responses=errors.responses(), dependencies=[Depends(identity.caller)]
    )
    async def cache_stats() -> dict[str, Any]:
        """Response cache figures of all workers: hits, misses, hit rate, entries, evictions
        (entries are per tenant — no tenant ever gets another's answer — the figures are the
        fleet's)."""
        return await _cache(cache)

    @routes.get("/stats", responses=errors.responses())
    async def stats(who: Annotated[identity.Caller, Depends(identity.caller)]) -> dict[str, Any]:
        """The caller's tenant: its tasks by status, its model calls/tokens/cost per model;
        and the fleet's cache figures."""
        counts, complete = await services.store.count_by_status(who.tenant, limit=STATS_SCAN_LIMIT)
        try:
            per_model = await usage.read(who.tenant)
        except Exception as error:  # the ledger is best effort; the store error is above
            raise errors.Unavailable("redis", f"usage ledger unavailable: {error}") from error
        totals = {
            name: round(sum(float(m.get(name, 0)) for m in per_model.values()), 8)
            for name in ("calls", "errors", "cache_hits", "total_tokens", "cost_usd")
        }
        return {
            "tasks": {"by_status": counts, "complete": complete, "scan_limit": STATS_SCAN_LIMIT},
            "models": per_model,
            "totals": totals,
            "cache": await _cache(cache),
        }

    return routes


async def _cache(cache: caching.ResponseCache) -> dict[str, Any]:
    try:
        return (await cache.stats()).as_json()
    except Exception as error:
        raise errors.Unavailable("redis", f"cache statistics unavailable: {error}") from error


async def _wait(services: Services, task_id: str, seconds: float) -> TaskRecord | None:
    """Poll the record until it is finished or `seconds` pass (10 ms steps growing to 100 ms)."""
    deadline = time.monotonic() + seconds
    pause = 0.01
    while True:
        record = await services.store.get(task_id)
        if record is not None and record.status.finished:
            return record
        left = deadline - time.monotonic()
        if left <= 0:
            return record
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 1.5, 0.1)


async def _probe(name: str, check: Any) -> tuple[str, dict[str, Any]]:
    try:
        await asyncio.wait_for(check, READY_CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is "not ready", reported with its type
        return name, {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return name, {"ok": True}
