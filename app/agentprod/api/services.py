"""What the API talks to, built by the runtime (real or embedded) and closed by it."""

from __future__ import annotations

import dataclasses

from agentprod.broker.base import Publisher
from agentprod.settings import Settings
from agentprod.store import TaskStore


@dataclasses.dataclass(frozen=True)
class Services:
    settings: Settings
    store: TaskStore
    publisher: Publisher
