"""Provider errors: Retry-After parsing and the classification the worker acts on."""

import email.utils

import pytest
from agentprod.llm import client

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "2500"}, 2.5),
        ({"retry-after-ms": "2500", "retry-after": "9"}, 2.5),  # the finer one wins
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),  # past date
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert client.retry_after_seconds(headers, now=NOW) == seconds


@pytest.mark.parametrize(
    ("status", "headers", "kind", "after"),
    [
        (429, {"retry-after": "3"}, client.ProviderRetryLater, 3.0),
        (503, {"retry-after": "3"}, client.ProviderRetryLater, 3.0),
        (429, {"retry-after": "99999"}, client.ProviderRetryLater, 600.0),  # capped
        (429, {}, client.ProviderTransient, None),  # no hint: ordinary backoff
        (503, {}, client.ProviderTransient, None),
        (500, {"retry-after": "3"}, client.ProviderTransient, None),
        (502, {}, client.ProviderTransient, None),
        (408, {}, client.ProviderTransient, None),
        (400, {}, client.ProviderRejected, None),
        (401, {}, client.ProviderRejected, None),
        (404, {}, client.ProviderRejected, None),
        (422, {}, client.ProviderRejected, None),
    ],
)
def test_classify_status(
    status: int, headers: dict[str, str], kind: type[client.ProviderError], after: float | None
) -> None:
    error = client.classify_status(status, headers, "boom", now=NOW, cap_seconds=600)
    assert type(error) is kind
    assert error.status == status
    assert "boom" in str(error)
    if after is not None:
        assert isinstance(error, client.ProviderRetryLater)
        assert error.after_seconds == after


@pytest.mark.parametrize(
    ("after", "delay"), [(0.0, 1.0), (0.4, 1.0), (7.0, 7.0), (90.0, 90.0), (1e9, 43200.0)]
)
def test_worker_hides_a_retry_later_task_for_the_asked_wait(after: float, delay: float) -> None:
    """Unlike the backoff (capped at 60 s), a Retry-After is honoured up to 12 h."""
    from agentprod import decisions

    assert decisions.retry_after_delay(after_seconds=after) == delay
