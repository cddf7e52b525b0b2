"""Usage and cost arithmetic: absent stays absent, prices are per million tokens."""

from types import SimpleNamespace

import pytest
from agentprod.llm import costs
from agentprod.llm.config import Price


@pytest.mark.parametrize(
    ("usage", "price", "expected"),
    [
        (costs.Usage(1_000_000, 0), Price(input=0.15, output=0.6), 0.15),
        (costs.Usage(0, 1_000_000), Price(input=0.15, output=0.6), 0.6),
        (costs.Usage(1200, 300), Price(input=0.3, output=2.5), 0.00111),
        (costs.Usage(10, 10), Price(input=0, output=0), 0.0),
        (None, Price(input=1, output=1), None),  # no usage reported: cost unknown, not 0
        (costs.Usage(10, 10), None, None),  # no price configured
    ],
)
def test_cost(usage: costs.Usage | None, price: Price | None, expected: float | None) -> None:
    assert costs.cost(usage, price) == expected


def test_usage_from_sdk_object_dict_and_nothing() -> None:
    assert costs.usage_from(None) is None
    assert costs.usage_from(SimpleNamespace(prompt_tokens=None, completion_tokens=None)) is None
    sdk = costs.usage_from(SimpleNamespace(prompt_tokens=5, completion_tokens=7))
    assert sdk == costs.Usage(5, 7)
    assert sdk.total_tokens == 12
    assert costs.usage_from({"prompt_tokens": 3, "completion_tokens": 0}) == costs.Usage(3, 0)


def test_sums_keep_absence() -> None:
    assert costs.add(None, None) is None
    assert costs.add(costs.Usage(1, 2), None) == costs.Usage(1, 2)
    assert costs.add(costs.Usage(1, 2), costs.Usage(3, 4)) == costs.Usage(4, 6)
    assert costs.add_costs(None, None) is None
    assert costs.add_costs(0.1, None) == 0.1
    assert costs.add_costs(0.1, 0.2) == 0.3
