"""Prometheus metrics of the API and the worker (one process may serve both in dev mode)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_SECONDS = Histogram(
    "agentprod_http_request_duration_seconds",
    "API request time, from the request to the end of the answer.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASKS_SUBMITTED = Counter("agentprod_tasks_submitted_total", "Tasks accepted by the API (202).")
SUBMIT_REFUSED = Counter(
    "agentprod_tasks_refused_total",
    "Submissions refused because a dependency was down (503).",
    ["dependency"],
)
DELIVERIES = Counter(
    "agentprod_deliveries_total",
    "Messages received by the worker, by what it did with them.",
    ["step"],
)
TASKS_FINISHED = Counter(
    "agentprod_tasks_finished_total", "Tasks settled by this worker.", ["status"]
)
ATTEMPTS_FAILED = Counter(
    "agentprod_attempts_failed_total", "Agent runs that raised and will be retried."
)
TASK_SECONDS = Histogram(
    "agentprod_task_run_seconds",
    "Agent run time per attempt.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECEIVES = Histogram(
    "agentprod_worker_receive_seconds",
    "Time of one receive from the broker (a long poll that finds nothing lasts its await time).",
    ["lane"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECEIVED = Counter(
    "agentprod_worker_received_total", "Messages the worker's receives brought.", ["lane"]
)
IN_FLIGHT = Gauge("agentprod_worker_in_flight", "Tasks this worker is running now.")
STORE_UP = Gauge(
    "agentprod_worker_store_up",
    "1 while this worker reaches Redis; 0 while it has paused receiving for a Redis outage.",
)
STORE_UP.set(1)
RECORDS_RECREATED = Counter(
    "agentprod_records_recreated_total",
    "Task records Redis had lost (a restart without AOF, a failover), recreated from the message.",
)
DEAD_LETTERS_SETTLED = Counter(
    "agentprod_dead_letters_settled_total",
    "Dead-lettered tasks this worker marked failed (their failed result published).",
)
