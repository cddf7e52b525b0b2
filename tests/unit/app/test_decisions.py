"""The worker's pure decisions: claim outcome → step, failure → retry or fail, backoff."""

import pytest
from agentprod import decisions
from agentprod.decisions import AfterFailure, Step
from agentprod.models import Claim, ClaimOutcome


@pytest.mark.parametrize(
    ("outcome", "published", "step"),
    [
        (ClaimOutcome.CLAIMED, False, Step.RUN),
        (ClaimOutcome.FINISHED, True, Step.ACK),
        (ClaimOutcome.FINISHED, False, Step.PUBLISH_AND_ACK),
        (ClaimOutcome.BUSY, False, Step.DEFER),
        (ClaimOutcome.MISSING, False, Step.DROP),
        (ClaimOutcome.ABANDONED, False, Step.PUBLISH_AND_ACK),  # failed by the claim itself
        (ClaimOutcome.LOST, False, Step.RECREATE),  # Redis lost it: rebuilt from the message
    ],
)
def test_step_for_claim(outcome: ClaimOutcome, published: bool, step: Step) -> None:
    claim = Claim(outcome=outcome, attempts=1, result_published=published)
    assert decisions.step_for(claim) is step


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "permanent", "verdict"),
    [
        (1, 17, False, AfterFailure.RETRY),
        (16, 17, False, AfterFailure.RETRY),
        (17, 17, False, AfterFailure.FAIL),  # the broker would dead-letter the next delivery
        (18, 17, False, AfterFailure.FAIL),
        (1, 17, True, AfterFailure.FAIL),
        (1, 1, False, AfterFailure.FAIL),  # max retries 0: one delivery only
    ],
)
def test_after_failure(attempt: int, max_attempts: int, permanent: bool, verdict: AfterFailure):
    assert (
        decisions.after_failure(
            delivery_attempt=attempt, max_attempts=max_attempts, permanent=permanent
        )
        is verdict
    )


@pytest.mark.parametrize(
    ("attempt", "base", "delay"),
    [(1, 1.0, 1.0), (2, 1.0, 2.0), (4, 1.0, 8.0), (10, 1.0, 60.0), (3, 0.0, 0.0), (1, 90.0, 60.0)],
)
def test_retry_delay_doubles_and_caps(attempt: int, base: float, delay: float) -> None:
    assert decisions.retry_delay(delivery_attempt=attempt, base_seconds=base) == delay


def test_renewal_happens_well_before_the_message_reappears() -> None:
    assert decisions.renew_every(30) == 10
    assert decisions.renew_every(10) == pytest.approx(10 / 3)
    assert decisions.renew_every(2) == 1.0


@pytest.mark.parametrize(
    ("lease_left", "invisible", "delay"),
    [(5.0, 30, 6.0), (-3.0, 30, 1.0), (100.0, 30, 30.0)],
)
def test_defer_waits_for_the_other_lease(lease_left: float, invisible: int, delay: float) -> None:
    assert (
        decisions.defer_delay(lease_left_seconds=lease_left, invisible_seconds=invisible) == delay
    )


@pytest.mark.parametrize(
    ("concurrency", "cap", "fill"),
    [(8, 32, 4), (1, 32, 1), (2, 32, 1), (64, 32, 16), (3, 32, 1)],
)
def test_receive_fill_is_half_a_batch(concurrency: int, cap: int, fill: int) -> None:
    assert decisions.receive_fill(concurrency=concurrency, cap=cap) == fill


@pytest.mark.parametrize(
    ("configured", "max_attempts", "limit"),
    [
        (3, 17, 3),  # the setting, well before the broker's last delivery
        (3, 3, 2),  # MQ_MAX_RETRIES 2: fail on the last delivery, not after it (dead letter)
        (5, 1, 1),  # never below one
        (1, 17, 1),
    ],
)
def test_max_lost_attempts(configured: int, max_attempts: int, limit: int) -> None:
    assert decisions.max_lost_attempts(configured=configured, max_attempts=max_attempts) == limit


def test_the_worker_lingers_before_a_receive_only_under_load() -> None:
    # Messages waiting (last receive full), tasks running, few slots free: wait for more.
    assert decisions.linger_before_receive(free=1, wanted=4, running=7, backlog=True)
    # The queue ran dry, nothing runs, or enough slots are free: receive at once.
    assert not decisions.linger_before_receive(free=1, wanted=4, running=7, backlog=False)
    assert not decisions.linger_before_receive(free=1, wanted=4, running=0, backlog=True)
    assert not decisions.linger_before_receive(free=4, wanted=4, running=4, backlog=True)


@pytest.mark.parametrize(
    ("free", "priority_lane", "last_brought", "asked"),
    [
        (100, False, 0, 32),  # no high lane: always all the room, up to a batch
        (5, False, 0, 5),
        (100, True, 0, 1),  # idle with a high lane: a long poll holds back one slot
        (100, True, 7, 32),  # brought some (a pop may bring fewer than asked): flowing
        (100, True, 32, 32),
        (3, True, 32, 3),
        (0, True, 0, 0),
    ],
)
def test_receive_ask(free: int, priority_lane: bool, last_brought: int, asked: int) -> None:
    assert (
        decisions.receive_ask(
            free=free, cap=32, priority_lane=priority_lane, last_brought=last_brought
        )
        == asked
    )
