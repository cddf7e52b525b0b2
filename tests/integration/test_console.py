"""The web console in a real headless browser (Debian's chromium driven by Playwright), against
the real API and worker on real RocketMQ and Redis.

Tasks are submitted from the page and must appear and finish without a reload; a task's detail
opens with its result and its events (live while it runs, the whole history once it ended), and
its cancel button cancels it, queued or running; a new API process shows the same tasks and
pipeline (the console keeps nothing in memory); a pipeline snapshot written the way the
operator writes it shows its lag and replicas (the operator on a control plane:
tests/e2e/test_autoscaler.py). Screenshots go to .cache/console/ (the README's comes from here).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from agentprod import keys
from agentprod.console import state
from harness.browser import launch_flags, require_chromium
from harness.redis import RedisServer
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.integration.helpers import Launch, make_key

ROOT = Path(__file__).parents[2]
SHOTS = ROOT / ".cache" / "console"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    chromium = require_chromium()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "profile"),  # a fresh profile per test
            executable_path=chromium,
            headless=True,
            args=launch_flags(),
            viewport={"width": 1100, "height": 900},
        )
        yield context
        context.close()


def _submit(page: Page, content: str, *, agent: str = "", metadata: str = "") -> str:
    """Submit from the page's form; the new task's id."""
    page.fill("#content", content)
    page.fill("#agent", agent)
    page.fill("#metadata", metadata)
    page.click("#submit-form button")
    status = page.locator("#submit-status")  # "submitting…" until this task's answer
    expect(status).to_contain_text("queued")
    return status.inner_text().split()[-1]


def _open_with_key(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/console")
    page.fill("#key", key)
    page.click("#key-form button")
    expect(page.locator("#live")).to_have_text("live")


def test_console_shows_tasks_live_and_a_pipeline(
    launch: Launch, browser: BrowserContext, redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    launch("worker", AGENT="sleep", WORKER_CONCURRENCY="4")
    api = launch("api", API_AUTH="required")
    # A tenant of its own: the console shows only this tenant's tasks, none of other tests'.
    key = make_key(redis_server, f"console-{uuid.uuid4().hex[:8]}", "--rate", "100000/minute")
    _write_pipeline(redis_client.connection_pool.connection_kwargs)

    page = browser.new_page()
    _open_with_key(page, api.url, key["key"])
    loaded = page.evaluate("performance.timeOrigin")

    for n in range(3):
        _submit(page, f"console task {n}")
    rows = page.locator("#tasks tbody tr")
    expect(rows).to_have_count(3)
    # All three finish without a reload: the list updates itself.
    expect(page.locator('#tasks tbody tr[data-status="done"]')).to_have_count(3, timeout=60_000)
    expect(page.locator('.card[data-status="done"] b')).to_have_text("3")
    assert page.evaluate("performance.timeOrigin") == loaded  # the same page, never reloaded

    rows.first.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-fields")).to_have_attribute("data-status", "done")
    expect(page.locator("#detail-result")).not_to_have_text("(no result yet)")
    expect(page.locator("#detail-events")).to_have_attribute("data-ended", "done")
    expect(page.locator("#detail-cancel")).to_be_hidden()  # nothing to cancel once done

    pipeline = page.locator('[data-pipeline="default/price-alerts"]')
    expect(pipeline.locator('[data-field="lag"] b')).to_have_text("42", timeout=10_000)
    expect(pipeline.locator('[data-field="replicas"] b')).to_have_text("2 / 3")
    expect(pipeline.locator("polyline")).to_have_count(2)

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    expect(page.locator("#tasks")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone's screen"
    page.screenshot(path=str(SHOTS / "console-phone.png"), full_page=True)

    # Durable: a new API process serves the same tasks and pipeline (read from Redis, nothing
    # from the old process's memory); a new origin, so the page asks for the key again.
    api.terminate()
    again = launch("api", API_AUTH="required")
    page.set_viewport_size({"width": 1100, "height": 900})
    _open_with_key(page, again.url, key["key"])
    expect(page.locator('#tasks tbody tr[data-status="done"]')).to_have_count(3)
    expect(pipeline.locator('[data-field="lag"] b')).to_have_text("42", timeout=10_000)


def test_console_follows_a_tasks_events_and_cancels_it(
    launch: Launch, browser: BrowserContext, redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    launch("worker", AGENT="sleep", WORKER_CONCURRENCY="1")  # one slot: a second task waits
    api = launch("api", API_AUTH="required")
    key = make_key(redis_server, f"console-{uuid.uuid4().hex[:8]}", "--rate", "100000/minute")
    page = browser.new_page()
    _open_with_key(page, api.url, key["key"])
    detail = page.locator("#detail")
    events = page.locator("#detail-events")
    fields = page.locator("#detail-fields")
    cancel = page.locator("#detail-cancel")
    said = page.locator("#cancel-status")

    # A long task, a step event each second: its detail shows them as they come.
    slow = _submit(page, "slow", agent="sleep", metadata='{"sleep_seconds": 120, "steps": 120}')
    page.click(f'#tasks tbody tr[data-task-id="{slow}"]')
    expect(detail).to_be_visible()
    expect(events.locator('li[data-status="running"]')).to_have_count(1, timeout=30_000)
    expect(events.locator('li[data-type="step"]')).to_have_count(2, timeout=10_000)
    expect(events.locator('li[data-type="step"]').last).to_contain_text("2 of 120")
    expect(page.locator("#events-state")).to_have_text("live")

    # A second task waits behind it (one slot): cancelled while queued, at once (200).
    waiting = _submit(page, "waiting", agent="sleep", metadata='{"sleep_seconds": 120}')
    page.click(f'#tasks tbody tr[data-task-id="{waiting}"]')
    expect(fields).to_have_attribute("data-status", "queued")
    expect(events.locator("li")).to_have_count(1)  # `queued`, then no further event
    cancel.click()
    expect(said).to_have_text("cancelled")
    expect(fields).to_have_attribute("data-status", "cancelled")
    expect(events).to_have_attribute("data-ended", "cancelled")
    expect(events.locator("li").last).to_have_attribute("data-status", "cancelled")
    expect(cancel).to_be_hidden()
    # still listed (the list reads the task index, not only the worker's outcomes)
    expect(page.locator(f'#tasks tbody tr[data-task-id="{waiting}"]')).to_have_attribute(
        "data-status", "cancelled"
    )

    # The running one: its worker stops the agent (202), the page follows it to `cancelled`.
    page.click(f'#tasks tbody tr[data-task-id="{slow}"]')
    expect(fields).to_have_attribute("data-status", "running")
    cancel.click()
    expect(said).to_contain_text("cancel requested")
    expect(fields).to_have_attribute("data-status", "cancelled", timeout=15_000)
    expect(events).to_have_attribute("data-ended", "cancelled")
    expect(events.locator("li").last).to_have_attribute("data-status", "cancelled")
    expect(events.locator('li[data-type="cancel_requested"]')).to_have_count(1)
    expect(page.locator(f'#tasks tbody tr[data-task-id="{slow}"]')).to_have_attribute(
        "data-status", "cancelled"
    )
    for task_id in (slow, waiting):
        assert redis_client.hget(keys.task(task_id), "status") in (b"cancelled", "cancelled")

    # A finished task's detail: its whole history, ending in the final event.
    quick = _submit(page, "quick", agent="sleep", metadata='{"steps": 2}')
    row = page.locator(f'#tasks tbody tr[data-task-id="{quick}"]')
    expect(row).to_have_attribute("data-status", "done", timeout=30_000)
    row.click()
    expect(events).to_have_attribute("data-ended", "done")
    kinds = events.locator("li").evaluate_all(
        "items => items.map(i => i.dataset.status || i.dataset.type)"
    )
    assert kinds == ["queued", "running", "step", "step", "done"], kinds
    # Should the page still offer a cancel (the task ended meanwhile), the 409 reads plainly.
    page.evaluate(
        "() => { const b = document.getElementById('detail-cancel'); b.hidden = false; b.click(); }"
    )
    expect(said).to_have_text(f"not cancelled: task {quick} is done already; nothing to cancel")
    expect(said).to_have_attribute("data-outcome", "409")

    agent = page.locator('#agents tbody tr[data-agent="sleep"] td')
    expect(agent).to_have_text(["sleep", "3", "1", "0", "2", "0", "0.000000", "\u2013"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-task.png"), full_page=True)


def test_console_data_needs_a_key_when_the_api_does(
    launch: Launch, browser: BrowserContext
) -> None:
    api = launch("api", API_AUTH="required")
    page = browser.new_page()
    page.goto(f"{api.url}/console")
    expect(page.locator("#key-form")).to_be_visible()  # asked for a key, shows no data
    expect(page.locator("#tasks tbody tr")).to_have_count(0)
    answer = page.request.get(f"{api.url}/console/api/tasks")
    assert answer.status == 401


def _write_pipeline(connection: dict[str, object]) -> None:
    """Snapshots as the operator's scaling pass writes them (scaling/daemon.py)."""
    import redis.asyncio as aioredis

    async def write() -> None:
        client = aioredis.Redis(host=connection["host"], port=connection["port"])
        now = time.time()
        for i, (lag, replicas) in enumerate([(10, 1), (80, 2), (42, 2)]):
            await state.write_pipeline(
                client,
                namespace="default",
                name="price-alerts",
                snapshot={
                    "at": now - 60 * (3 - i),
                    "lag": lag,
                    "inFlight": 4,
                    "replicas": replicas,
                    "desiredReplicas": 3,
                    "reason": "lag",
                    "message": "lag 42 over 20 per replica",
                    "deadLetters": 0,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}],
                },
            )
        await client.aclose()

    # Playwright's sync API holds this thread's event loop: write from a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result()
