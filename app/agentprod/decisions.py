"""Pure decisions of the worker: what to do with a delivery, after a failure, and when.

No I/O here, so every branch is a table-driven unit test (tests/unit/app/test_decisions.py).
"""

from __future__ import annotations

import dataclasses
import enum

from agentprod.models import Claim, ClaimOutcome

MAX_RETRY_DELAY_SECONDS = 60.0
MAX_INVISIBLE_SECONDS = 43200.0


class Step(enum.StrEnum):
    """What the worker does with a delivery once it has tried to claim the task."""

    RUN = "run"  # claimed: run the agent
    ACK = "ack"  # finished and its result published: a duplicate, drop it
    PUBLISH_AND_ACK = "publish_and_ack"  # finished but the result message never went out
    DEFER = "defer"  # another worker holds a live lease: look again later
    DROP = "drop"  # no record (expired, or its submission was refused): nothing to run
    RECREATE = "recreate"  # Redis lost the record: write it back from the message, then run


def step_for(claim: Claim) -> Step:
    if claim.outcome is ClaimOutcome.CLAIMED:
        return Step.RUN
    if claim.outcome is ClaimOutcome.FINISHED:
        return Step.ACK if claim.result_published else Step.PUBLISH_AND_ACK
    if claim.outcome is ClaimOutcome.LOST:
        return Step.RECREATE
    if claim.outcome is ClaimOutcome.ABANDONED:  # the claim stored `failed`: publish it
        return Step.PUBLISH_AND_ACK
    if claim.outcome is ClaimOutcome.BUSY:
        return Step.DEFER
    return Step.DROP


class AfterFailure(enum.StrEnum):
    RETRY = "retry"  # release the task and let the broker redeliver it
    FAIL = "fail"  # record the task as failed and publish that


def after_failure(*, delivery_attempt: int, max_attempts: int, permanent: bool) -> AfterFailure:
    """Fail on a permanent error or on the last delivery the broker will make, else retry.

    The broker dead-letters a message instead of delivering it a (max_attempts + 1)-th time, so
    the worker must settle the task on delivery `max_attempts` at the latest.
    """
    if permanent or delivery_attempt >= max_attempts:
        return AfterFailure.FAIL
    return AfterFailure.RETRY


def retry_delay(*, delivery_attempt: int, base_seconds: float) -> float:
    """Exponential backoff before the next delivery: base, 2 x base, 4 x base … capped at 60 s."""
    exponent = max(0, delivery_attempt - 1)
    return min(MAX_RETRY_DELAY_SECONDS, base_seconds * 2.0**exponent)


def retry_after_delay(*, after_seconds: float) -> float:
    """The wait an agent's `RetryLater` asks for (a provider's Retry-After, a rate-limit window),
    at least 1 s and at most the broker's longest invisible duration (12 h)."""
    return min(max(1.0, after_seconds), MAX_INVISIBLE_SECONDS)


def max_lost_attempts(*, configured: int, max_attempts: int) -> int:
    """Lost runs (expired leases) a task may have before it fails: the configured number, but
    low enough to fail it before the broker's last delivery, after which it would be
    dead-lettered with its record still `running`."""
    return max(1, min(configured, max_attempts - 1))


def renew_every(invisible_seconds: float) -> float:
    """Renew a running task's invisibility and lease at a third of its length."""
    return max(1.0, invisible_seconds / 3.0)


def defer_delay(*, lease_left_seconds: float, invisible_seconds: float) -> float:
    """How long to hide a delivery whose task another worker is running."""
    return min(max(1.0, lease_left_seconds + 1.0), float(invisible_seconds))


def receive_fill(*, concurrency: int, cap: int) -> int:
    """Free slots worth a receive of their own while other tasks run: half a full batch."""
    return max(1, min(concurrency, cap) // 2)


def linger_before_receive(*, free: int, wanted: int, running: int, backlog: bool) -> bool:
    """Wait (briefly) for more free slots before receiving? Only under load: tasks running,
    fewer slots free than `wanted`, and the last receive came back full (`backlog`: more
    messages were waiting). Otherwise receive at once — an idle worker adds no wait."""
    return backlog and running > 0 and free < wanted


def priority_room(
    *, concurrency: int, reserve: int, holding: int, running: int, asked_normal: int = 0
) -> int:
    """High-priority messages a worker asks for now: at most `reserve` per receive, within
    its free slots plus the `reserve` slots only high-priority tasks use (so one starts even
    while every slot runs a normal task), less what a pending normal receive may still bring
    (`asked_normal`), and at most `concurrency + reserve` tasks past their store step still
    settling.

    With the normal receive asking at most `normal_room` (below `concurrency`), whatever both
    receives land fits in `concurrency + reserve` slots: nothing is ever handed back."""
    return max(
        0,
        min(
            reserve,
            concurrency + reserve - holding - asked_normal,
            2 * concurrency + reserve - running,
        ),
    )


def receive_ask(*, free: int, cap: int, priority_lane: bool, last_brought: int) -> int:
    """Messages the normal loop asks for: its free slots, at most `cap` per receive. With a
    high-priority lane, a worker whose last receive brought nothing asks for one: its long
    poll then holds back one slot from high-priority work, not a batch. A receive that brought
    any message says the topic is flowing (a pop from a deep backlog may still bring fewer
    than asked: the broker reads at most 32 per queue and pop), so the next asks for them all."""
    asked = min(free, cap)
    if priority_lane and last_brought == 0:
        return min(asked, 1)
    return asked


def normal_room(*, concurrency: int, holding: int, running: int) -> int:
    """Normal-priority messages a worker takes now: free slots (high-priority tasks in the
    reserve count as holding one), with at most `concurrency` tasks still settling."""
    return max(0, min(concurrency - holding, 2 * concurrency - running))


@dataclasses.dataclass(frozen=True)
class RunBudget:
    """How long one agent run may take: None for unbounded; `by_deadline` when the task's
    deadline (not the worker's per-run timeout) sets it, so running out fails the task."""

    seconds: float | None
    by_deadline: bool = False


def run_budget(*, timeout_seconds: float, deadline_left_seconds: float | None) -> RunBudget:
    """The smaller of the per-run timeout (0: none) and what is left before the deadline."""
    timeout = timeout_seconds if timeout_seconds > 0 else None
    if deadline_left_seconds is None:
        return RunBudget(timeout)
    if timeout is not None and timeout < deadline_left_seconds:
        return RunBudget(timeout)
    return RunBudget(max(0.0, deadline_left_seconds), by_deadline=True)
