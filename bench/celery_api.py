"""A minimal FastAPI front for Celery (`bench.compare_celery`'s ``celery-http`` side): the way
a Celery user puts tasks behind HTTP, so both systems' submit paths are HTTP → broker.

``POST /tasks`` takes agentprod's body (``user_id``, ``content``, ``agent``, ``metadata``),
validates it with pydantic, sends `bench.celery_app`'s task with ``apply_async`` and answers
202 ``{"task_id"}``. The endpoint is a plain ``def``: Celery's client is synchronous, so
FastAPI runs it in its thread pool. ``GET /healthz`` for readiness.

    uvicorn bench.celery_api:app --port 8100
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from bench.celery_app import run_agent


class TaskIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=256)
    content: str
    agent: str = Field(pattern="^(echo|sleep)$")
    metadata: dict[str, Any] = Field(default_factory=dict)


app = FastAPI()


@app.post("/tasks", status_code=202)
def submit(task: TaskIn) -> dict[str, str]:
    sent = run_agent.apply_async(args=(task.agent, task.content, task.metadata))
    return {"task_id": str(sent.id)}


@app.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}
