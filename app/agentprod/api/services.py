"""What the API talks to, built by the runtime (real or embedded) and closed by it."""

from __future__ import annotations

import dataclasses
import functools

from agentprod.broker.base import Publisher
from agentprod.settings import Settings
from agentprod.store import KeyStore, RequestLimiter, TaskStore


@dataclasses.dataclass(frozen=True)
class Services:
    settings: Settings
    store: TaskStore
    publisher: Publisher
    #: Requests per key per window; in-process unless the runtime gives the Redis-backed one.
    limiter: RequestLimiter = dataclasses.field(default_factory=lambda: RequestLimiter(None))

    @functools.cached_property
    def keys(self) -> KeyStore:
        """The API keys, in the task store's Redis."""
        return KeyStore(self.store.client)
