"""`agentprod submit`: post a task to a running API and wait for its outcome, showing progress."""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any, TextIO

import httpx

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
POLL_SECONDS = 0.2


class SubmitError(RuntimeError):
    pass


def submit(
    *,
    url: str,
    content: str,
    user_id: str,
    agent: str | None,
    idempotency_key: str | None,
    wait: bool,
    api_key: str | None = None,
    timeout: float,
    progress: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Post the task; with `wait`, poll until done/failed (or `timeout`) and return its view."""
    body: dict[str, Any] = {"user_id": user_id, "content": content}
    if agent:
        body["agent"] = agent
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with httpx.Client(base_url=url.rstrip("/"), timeout=10.0, headers=auth) as client:
        try:
            answer = client.post("/tasks", json=body, headers=headers)
        except httpx.HTTPError as error:
            raise SubmitError(f"cannot reach {url}: {error}") from error
        if answer.status_code == 401:
            raise SubmitError(
                f"POST /tasks answered 401: {answer.text} "
                "(set --api-key or AGENTPROD_API_KEY; `agentprod keys create` makes one)"
            )
        if answer.status_code != 202:
            raise SubmitError(f"POST /tasks answered {answer.status_code}: {answer.text}")
        accepted: dict[str, Any] = answer.json()
        if not wait:
            return accepted
        return _wait(client, accepted["task_id"], timeout=timeout, progress=progress)


def _wait(
    client: httpx.Client, task_id: str, *, timeout: float, progress: TextIO
) -> dict[str, Any]:
    interactive = progress.isatty()
    started = time.monotonic()
    last_status = None
    for frame in itertools.cycle(SPINNER):
        view: dict[str, Any] = client.get(f"/tasks/{task_id}").raise_for_status().json()
        status = view["status"]
        elapsed = time.monotonic() - started
        if interactive:
            progress.write(f"\r{frame} {task_id} {status:<8} {elapsed:5.1f}s")
        elif status != last_status:
            progress.write(f"{task_id} {status} after {elapsed:.1f}s\n")
        progress.flush()
        last_status = status
        if status in ("done", "failed"):
            if interactive:
                progress.write("\n")
            return view
        if elapsed > timeout:
            raise SubmitError(f"task {task_id} still {status} after {timeout:.0f}s")
        time.sleep(POLL_SECONDS)
    raise AssertionError("unreachable")
