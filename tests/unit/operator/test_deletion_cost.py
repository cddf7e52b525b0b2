"""pod-deletion-cost from in-flight work (pure): idle pods cost 0, busy ones their tasks, and
only changed annotations are written."""

from __future__ import annotations

import pytest
from agentprod_operator.scaling.deletion import ANNOTATION, deletion_costs


@pytest.mark.parametrize(
    ("pods", "in_flight", "expected"),
    [
        ({"a": None, "b": None}, {"a": 3}, {"a": "3", "b": "0"}),  # first time: all written
        ({"a": "3", "b": "0"}, {"a": 3}, {}),  # unchanged: nothing to patch
        ({"a": "3", "b": "0"}, {"b": 2}, {"a": "0", "b": "2"}),  # work moved
        ({"a": "1"}, {"a": 1, "gone": 4}, {}),  # tasks of a pod no longer listed: ignored
        ({}, {"a": 1}, {}),
    ],
)
def test_deletion_costs(
    pods: dict[str, str | None], in_flight: dict[str, int], expected: dict[str, str]
) -> None:
    assert deletion_costs(pods, in_flight) == expected


def test_the_annotation_is_the_one_the_replicaset_reads() -> None:
    assert ANNOTATION == "controller.kubernetes.io/pod-deletion-cost"
