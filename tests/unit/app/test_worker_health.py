"""The worker's health server: liveness from the loop's heartbeat, readiness from Redis, metrics."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from agentprod import health
from agentprod.settings import Settings
from starlette.testclient import TestClient


@dataclasses.dataclass
class LoopState:
    last_heartbeat: float
    stopping: bool = False
    in_flight: int = 3
    store_available: bool = True


def client(state: LoopState) -> TestClient:
    worker: Any = state  # the four attributes the server reads
    return TestClient(health.app(Settings(), worker))


def test_a_loop_that_ticked_is_alive_and_ready() -> None:
    web = client(LoopState(last_heartbeat=time.monotonic()))
    alive = web.get("/healthz")
    assert alive.status_code == 200
    assert alive.json()["status"] == "ok"
    assert alive.json()["in_flight"] == 3
    assert web.get("/readyz").json() == {"status": "ready", "store": "up", "stopping": False}


def test_a_stalled_loop_fails_liveness_unless_it_is_stopping() -> None:
    stalled = LoopState(last_heartbeat=time.monotonic() - 3600)
    assert client(stalled).get("/healthz").status_code == 503
    stalled.stopping = True
    assert client(stalled).get("/healthz").status_code == 200


def test_redis_down_is_unready_and_metrics_are_prometheus_text() -> None:
    web = client(LoopState(last_heartbeat=time.monotonic(), store_available=False))
    ready = web.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["store"] == "down"
    metrics = web.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "agentprod_worker_in_flight" in metrics.text
    assert web.post("/healthz").status_code == 405
