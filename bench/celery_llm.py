"""The Celery side of the model-bound benchmark (`bench.compare_llm`): one task that asks the
loopback model server (`bench.llm_server`) for a chat completion with the openai SDK — the
request agentprod's `chat` agent sends (system + user message, temperature 0, max_tokens 256).

It is written the way a Celery user writes it: the SDK's synchronous client, one per worker
process, shared by the pool's threads or greenlets (``--pool gevent`` monkey-patches sockets
before this module is imported, so the same code yields on I/O). Settings as in
`bench.celery_app`: ``task_acks_late`` with ``worker_prefetch_multiplier=1``, Redis broker and
result backend.

    celery -A bench.celery_llm worker --pool gevent --concurrency 256
"""

from __future__ import annotations

import os
import time
from typing import Any

import openai
from celery import Celery

TASK_NAME = "bench.chat"
SYSTEM = "You are a helpful assistant. Answer briefly and accurately."  # as agentprod's chat

app = Celery(
    "agentprod_bench_llm",
    broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("BENCH_CELERY_BACKEND", "redis://127.0.0.1:6379/1"),
)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # The pool holds up to `concurrency` results waiting to be stored; the default of 10
    # connections would serialise them behind each other.
    redis_max_connections=None,
    broker_pool_limit=None,
)

_client: openai.OpenAI | None = None


def _model() -> openai.OpenAI:
    global _client
    if _client is None:  # created in the pool process, after a fork
        _client = openai.OpenAI(
            base_url=os.environ["OPENAI_BASE_URL"],
            api_key=os.environ.get("OPENAI_API_KEY", "bench"),
            timeout=60.0,
            max_retries=0,
        )
    return _client


def _chat(content: str) -> dict[str, Any]:
    started = time.time()
    answer = _model().chat.completions.create(
        model=os.environ.get("LLM_MODEL_FAST", "bench-model"),
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}],
        temperature=0.0,
        max_tokens=256,
    )
    return {"answer": answer.choices[0].message.content or "", "started": started}


chat = app.task(name=TASK_NAME)(_chat)
