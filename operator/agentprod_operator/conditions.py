"""Status conditions (pure): set one, keeping lastTransitionTime while its status holds."""

from __future__ import annotations

import dataclasses
from typing import Any

READY = "Ready"
TOPICS_READY = "TopicsReady"
GROUP_READY = "ConsumerGroupReady"
WORKERS_READY = "WorkersReady"
SCALING_ACTIVE = "ScalingActive"
ORDER = [READY, TOPICS_READY, GROUP_READY, WORKERS_READY, SCALING_ACTIVE]
#: Who writes which conditions (server-side apply field managers): each writer applies only
#: its own, so the reconcile handler and the scaling daemon never undo each other's.
RECONCILE_MANAGER = "agentprod-reconcile"
SCALING_MANAGER = "agentprod-scaling"
OWNED_BY = {
    RECONCILE_MANAGER: (READY, TOPICS_READY, GROUP_READY, WORKERS_READY),
    SCALING_MANAGER: (SCALING_ACTIVE,),
}


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


def merge(
    current: list[dict[str, Any]], updates: list[Condition], *, now: str, generation: int
) -> list[dict[str, Any]]:
    """Conditions after applying `updates`, in a stable order."""
    by_type = {item["type"]: dict(item) for item in current}
    for update in updates:
        status = "True" if update.status else "False"
        previous = by_type.get(update.type)
        changed = previous is None or previous.get("status") != status
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message,
            "observedGeneration": generation,
            "lastTransitionTime": now if changed else previous["lastTransitionTime"],  # type: ignore[index]
        }
    ordered = [by_type.pop(name) for name in ORDER if name in by_type]
    return ordered + [by_type[name] for name in sorted(by_type)]


def owned(conditions: list[dict[str, Any]], manager: str) -> list[dict[str, Any]]:
    """The entries of `conditions` that `manager` writes."""
    mine = OWNED_BY[manager]
    return [item for item in conditions if item.get("type") in mine]


def status_of(conditions: list[dict[str, Any]], kind: str) -> str | None:
    for item in conditions:
        if item.get("type") == kind:
            return str(item.get("status"))
    return None
