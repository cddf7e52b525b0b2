"""Which worker pods a scale-in removes first: `controller.kubernetes.io/pod-deletion-cost`.

The ReplicaSet controller deletes, among pods otherwise alike (all Running and Ready), those
with the lowest cost first. The scaler sets each worker pod's cost to the tasks it runs (its
live leases in Redis, `TaskStore.in_flight_by_pod`) before it scales in, so idle pods go
first and busy ones keep their work. Pure: the caller lists the pods and writes the patches.
"""

from __future__ import annotations

from collections.abc import Mapping

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


def deletion_costs(pods: Mapping[str, str | None], in_flight: Mapping[str, int]) -> dict[str, str]:
    """The annotation values to write: pod → its in-flight tasks, only where they changed.

    `pods`: the live worker pods and their current annotation (None when unset);
    `in_flight`: running tasks per pod name (pods without any run none).
    """
    wanted = {name: str(max(0, int(in_flight.get(name, 0)))) for name in pods}
    return {name: cost for name, cost in wanted.items() if pods[name] != cost}
