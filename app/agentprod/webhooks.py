"""Completion webhooks: POST a finished task's result message to its `callback_url`, signed
(`webhook_rules.signature`), retried with backoff up to WEBHOOK_MAX_ATTEMPTS, every attempt
recorded in Redis (`TaskStore.record_callback_attempt`, read by GET /tasks/{id}/callbacks).

Deliveries run in the background of the worker process, so a slow receiver never holds a task
slot; a worker stopping drains them for up to its grace period. The host is resolved and every
address checked against the URL policy before each attempt (a name that resolves to a
metadata address is refused like the literal address).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agentprod import webhook_rules
from agentprod.settings import Settings
from agentprod.store import StoreUnavailable, TaskStore

if TYPE_CHECKING:  # httpx loads with the first delivery: the API only checks callback URLs
    import httpx

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WebhookOptions:
    secret: str
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    timeout_seconds: float = 10.0
    policy: webhook_rules.UrlPolicy = dataclasses.field(default_factory=webhook_rules.UrlPolicy)
    record_ttl_seconds: int = 86400


def policy_from(settings: Settings) -> webhook_rules.UrlPolicy:
    return webhook_rules.UrlPolicy(
        allow_loopback=settings.webhook_allow_loopback,
        allow_link_local=settings.webhook_allow_link_local,
        require_https=settings.webhook_require_https,
    )


def options_from(settings: Settings) -> WebhookOptions:
    return WebhookOptions(
        secret=settings.webhook_secret,
        max_attempts=settings.webhook_max_attempts,
        backoff_seconds=settings.webhook_backoff_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        policy=policy_from(settings),
        record_ttl_seconds=settings.task_result_ttl_seconds,
    )


def check_callback_url(url: str, settings: Settings) -> None:
    """What the API checks of a submitted `callback_url` (raises `CallbackRefused`)."""
    if not settings.webhook_secret:
        raise webhook_rules.CallbackRefused(
            "callbacks are not enabled here: WEBHOOK_SECRET is not set"
        )
    webhook_rules.check_url(url, policy_from(settings))


class CallbackSender:
    """Sends callbacks in background tasks; `close` waits for them (bounded)."""

    def __init__(self, *, store: TaskStore, options: WebhookOptions) -> None:
        self._store = store
        self._options = options
        self._client: httpx.AsyncClient | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def send(self, *, task_id: str, url: str, body: bytes, delivery_id: str) -> None:
        task = asyncio.create_task(self._deliver(task_id, url, body, delivery_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def close(self, *, grace_seconds: float) -> None:
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=grace_seconds)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d callback delivery(ies) cut short by the stop", len(late))
                await asyncio.wait(late, timeout=2)
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._options.timeout_seconds, follow_redirects=False
            )
        return self._client

    async def _deliver(self, task_id: str, url: str, body: bytes, delivery_id: str) -> None:
        import httpx

        options = self._options
        for attempt in range(1, options.max_attempts + 1):
            started = time.monotonic()
            outcome: dict[str, object] = {"attempt": attempt, "at": time.time(), "url": url}
            try:
                if not options.secret:
                    raise webhook_rules.CallbackRefused("WEBHOOK_SECRET is not set on the worker")
                await self._check_host(url)
                timestamp = int(time.time())
                answer = await self._http().post(
                    url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "agentprod-webhook/1",
                        webhook_rules.TIMESTAMP_HEADER: str(timestamp),
                        webhook_rules.SIGNATURE_HEADER: webhook_rules.signature(
                            options.secret, timestamp, body
                        ),
                        webhook_rules.DELIVERY_HEADER: delivery_id,
                        webhook_rules.ATTEMPT_HEADER: str(attempt),
                    },
                )
                outcome["status_code"] = answer.status_code
                outcome["ok"] = webhook_rules.succeeded(answer.status_code)
            except webhook_rules.CallbackRefused as error:
                outcome |= {"ok": False, "error": f"refused: {error}", "final": True}
            except httpx.HTTPError as error:
                outcome |= {"ok": False, "error": f"{type(error).__name__}: {error}"}
            outcome["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            await self._record(task_id, outcome)
            if outcome["ok"]:
                log.info("task %s: callback delivered on attempt %d", task_id, attempt)
                return
            if outcome.get("final") or attempt == options.max_attempts:
                log.warning("task %s: callback to %s given up: %s", task_id, url, outcome)
                return
            await asyncio.sleep(
                webhook_rules.backoff(attempt=attempt, base_seconds=options.backoff_seconds)
            )

    async def _check_host(self, url: str) -> None:
        import httpx

        parts = urlsplit(url)
        host = webhook_rules.check_url(url, self._options.policy)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except OSError as error:
            raise httpx.ConnectError(f"cannot resolve {host}: {error}") from error
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            webhook_rules.check_address(address, self._options.policy)

    async def _record(self, task_id: str, outcome: dict[str, object]) -> None:
        try:
            await self._store.record_callback_attempt(
                task_id, outcome, ttl_seconds=self._options.record_ttl_seconds
            )
        except StoreUnavailable as error:
            log.warning("task %s: callback attempt not recorded: %s", task_id, error)
