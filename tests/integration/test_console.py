"""The web console in a real headless browser (Debian's chromium driven by Playwright), against
the real API and worker on real RocketMQ and Redis.

Tasks are submitted from the page and must appear and finish without a reload; a task's detail
opens with its result; a pipeline snapshot written the way the operator writes it shows its lag
and replicas (the operator on a control plane: tests/e2e/test_autoscaler.py). Screenshots go
to .cache/console/ (the README's comes from here).
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


def _submit(page: Page, content: str) -> None:
    page.fill("#content", content)
    page.click("#submit-form button")
    expect(page.locator("#submit-status")).to_contain_text("queued")


def test_console_shows_tasks_live_and_a_pipeline(
    launch: Launch, browser: BrowserContext, redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    launch("worker", AGENT="sleep", WORKER_CONCURRENCY="4")
    api = launch("api", API_AUTH="required")
    # A tenant of its own: the console shows only this tenant's tasks, none of other tests'.
    key = make_key(redis_server, f"console-{uuid.uuid4().hex[:8]}", "--rate", "100000/minute")
    _write_pipeline(redis_client.connection_pool.connection_kwargs)

    page = browser.new_page()
    page.goto(f"{api.url}/console")
    page.fill("#key", key["key"])
    page.click("#key-form button")
    expect(page.locator("#live")).to_have_text("live")
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
