"""Token usage and its price, pure: usage absent stays absent (never a zero that looks free)."""

from __future__ import annotations

import dataclasses
from typing import Any

from agentprod.llm.config import Price


@dataclasses.dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


def usage_from(raw: Any) -> Usage | None:
    """The SDK's usage object (or a dict) as `Usage`; None when the server reported none."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    else:
        prompt = getattr(raw, "prompt_tokens", None)
        completion = getattr(raw, "completion_tokens", None)
    if prompt is None and completion is None:
        return None
    return Usage(prompt_tokens=int(prompt or 0), completion_tokens=int(completion or 0))


def add(first: Usage | None, second: Usage | None) -> Usage | None:
    """Sum of two usages; absent only when both are."""
    if first is None:
        return second
    if second is None:
        return first
    return Usage(
        prompt_tokens=first.prompt_tokens + second.prompt_tokens,
        completion_tokens=first.completion_tokens + second.completion_tokens,
    )


def cost(usage: Usage | None, price: Price | None) -> float | None:
    """USD for `usage` at `price` (per million tokens); None when either is unknown."""
    if usage is None or price is None:
        return None
    total = usage.prompt_tokens * price.input + usage.completion_tokens * price.output
    return round(total / 1_000_000, 8)


def add_costs(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return round(first + second, 8)
