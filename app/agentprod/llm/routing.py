"""Model selection by complexity: a pure function from a request to a tier, model and reason.

Rules in order (the first that applies wins, and its reason goes into the task's result):
1. an explicit `model` in the request, if it is one of the configured ids;
2. an explicit `task_type`: simple/fast → fast, complex/strong/reasoning → strong;
3. the agent kind: the planner plans with the strong tier;
4. signal words of analysis (the seed's 分析/解释/比较 and their English counterparts, plus a few
   close relatives) → strong;
5. long input (over `LONG_INPUT_CHARS` characters) → strong;
6. otherwise fast.
"""

from __future__ import annotations

import dataclasses
import re

from agentprod.llm.config import Tier

LONG_INPUT_CHARS = 600
SIGNAL_WORDS_ZH = ("分析", "解释", "比较", "对比", "评估", "推理", "为什么", "原因")
SIGNAL_WORDS_EN = (
    "analyse",
    "analyze",
    "analysis",
    "explain",
    "explanation",
    "compare",
    "comparison",
    "contrast",
    "evaluate",
    "reason about",
    "why",
)
_EN_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in SIGNAL_WORDS_EN) + r")", re.I)
FAST_TASK_TYPES = frozenset({"simple", "fast", "general", "chat"})
STRONG_TASK_TYPES = frozenset({"complex", "strong", "reasoning", "analysis"})


class UnknownModel(ValueError):
    """The request named a model that is not configured."""


@dataclasses.dataclass(frozen=True)
class Route:
    tier: Tier
    model: str
    reason: str


def route(
    content: str,
    *,
    agent: str,
    fast_model: str,
    strong_model: str,
    requested_model: str | None = None,
    task_type: str | None = None,
) -> Route:
    """Pick the tier and model for one request; see the module docstring for the rules."""
    if requested_model:
        if requested_model == strong_model:
            return Route(Tier.STRONG, strong_model, f"requested model {requested_model}")
        if requested_model == fast_model:
            return Route(Tier.FAST, fast_model, f"requested model {requested_model}")
        raise UnknownModel(
            f"model {requested_model!r} is not configured; known: {fast_model}, {strong_model}"
        )
    if task_type:
        kind = task_type.strip().lower()
        if kind in STRONG_TASK_TYPES:
            return Route(Tier.STRONG, strong_model, f"task_type {kind}")
        if kind in FAST_TASK_TYPES:
            return Route(Tier.FAST, fast_model, f"task_type {kind}")
    if agent == "planner":
        return Route(Tier.STRONG, strong_model, "planner plans with the strong tier")
    zh = next((word for word in SIGNAL_WORDS_ZH if word in content), None)
    if zh is not None:
        return Route(Tier.STRONG, strong_model, f"signal word {zh}")
    en = _EN_PATTERN.search(content)
    if en is not None:
        return Route(Tier.STRONG, strong_model, f"signal word {en.group(1).lower()}")
    if len(content) > LONG_INPUT_CHARS:
        return Route(Tier.STRONG, strong_model, f"long input ({len(content)} chars)")
    return Route(Tier.FAST, fast_model, "simple request")
