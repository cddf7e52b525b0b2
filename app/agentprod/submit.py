"""`agentprod submit`: post a task to a running API and wait for its outcome, showing progress.

Every failure of the HTTP exchange is a `SubmitError` whose message names the URL (and the
`--url` flag when the address itself is the problem): the CLI prints it and exits 2.

With `--follow` the wait reads the task's Server-Sent Events (GET /tasks/{id}/events) and
prints each one as it comes, resuming with Last-Event-ID if the connection drops.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
POLL_SECONDS = 0.2


class SubmitError(RuntimeError):
    pass


@contextlib.contextmanager
def _translated(url: str) -> Iterator[None]:
    """HTTP, connection and decoding failures → SubmitError naming the URL."""
    try:
        yield
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
        raise SubmitError(f"--url {url!r} is not a usable http(s) URL: {error}") from None
    except httpx.TimeoutException as error:
        raise SubmitError(f"{url} did not answer in time: {type(error).__name__}") from None
    except httpx.TransportError as error:
        raise SubmitError(
            f"cannot reach {url} (--url or AGENTPROD_URL): {error or type(error).__name__}"
        ) from None
    except httpx.HTTPError as error:
        raise SubmitError(f"{url}: {error}") from None


def _json(answer: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SubmitError(
            f"{what} at {answer.request.url} answered {answer.status_code} with no JSON object "
            f"(is --url an agentprod API?): {answer.text[:200]!r}"
        )
    return body


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
    progress: TextIO | None = None,
    follow: bool = False,
    priority: str | None = None,
) -> dict[str, Any]:
    """Post the task; with `wait`, poll until done/failed (or `timeout`) and return its view."""
    body: dict[str, Any] = {"user_id": user_id, "content": content}
    if agent:
        body["agent"] = agent
    if priority:
        body["priority"] = priority
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with (
        _translated(url),
        httpx.Client(base_url=url.rstrip("/"), timeout=10.0, headers=auth) as client,
    ):
        answer = client.post("/tasks", json=body, headers=headers)
        if answer.status_code == 401:
            raise SubmitError(
                f"POST /tasks answered 401: {answer.text} "
                "(set --api-key or AGENTPROD_API_KEY; `agentprod keys create` makes one)"
            )
        if answer.status_code != 202:
            raise SubmitError(f"POST /tasks answered {answer.status_code}: {answer.text}")
        accepted = _json(answer, "POST /tasks")
        task_id = accepted.get("task_id")
        if not isinstance(task_id, str):
            raise SubmitError(f"POST /tasks answered 202 without a task_id: {answer.text}")
        if not wait:
            return accepted
        if follow:
            return _follow(client, task_id, timeout=timeout, progress=progress or sys.stderr)
        return _wait(client, task_id, timeout=timeout, progress=progress or sys.stderr)


def _follow(
    client: httpx.Client, task_id: str, *, timeout: float, progress: TextIO
) -> dict[str, Any]:
    """Print the task's events (one `<type> <json>` line each) until its `end`; the view."""
    deadline = time.monotonic() + timeout
    last_id: str | None = None
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with client.stream(
                "GET", f"/tasks/{task_id}/events", headers=headers, timeout=timeout
            ) as answer:
                if answer.status_code != 200:
                    answer.read()
                    raise SubmitError(
                        f"GET /tasks/{task_id}/events answered {answer.status_code}: {answer.text}"
                    )
                event_id: str | None = None
                for line in answer.iter_lines():
                    if line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("data:"):
                        try:
                            data = json.loads(line[5:])
                        except ValueError:
                            raise SubmitError(f"events of {task_id}: not JSON: {line!r}") from None
                        progress.write(
                            f"{data.get('type')} {json.dumps(data, ensure_ascii=False)}\n"
                        )
                        progress.flush()
                        if data.get("type") == "end":
                            return _json(client.get(f"/tasks/{task_id}"), "GET /tasks/{id}")
                        last_id = event_id or last_id
                        event_id = None
        except httpx.TransportError as error:  # dropped: resume after the last event seen
            progress.write(f"(events connection lost: {error}; resuming)\n")
            time.sleep(POLL_SECONDS)
    raise SubmitError(f"task {task_id} did not end within {timeout:.0f}s")


def _wait(
    client: httpx.Client, task_id: str, *, timeout: float, progress: TextIO
) -> dict[str, Any]:
    interactive = progress.isatty()
    started = time.monotonic()
    last_status = None
    for frame in itertools.cycle(SPINNER):
        answer = client.get(f"/tasks/{task_id}")
        if answer.status_code != 200:
            raise SubmitError(f"GET /tasks/{task_id} answered {answer.status_code}: {answer.text}")
        view = _json(answer, f"GET /tasks/{task_id}")
        status = str(view.get("status"))
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
