"""Model selection by complexity: the rules of `llm.routing.route`, one row each."""

import pytest
from agentprod.llm import routing
from agentprod.llm.config import Tier

FAST, STRONG = "small-model", "big-model"


@pytest.mark.parametrize(
    ("content", "agent", "model", "task_type", "tier", "reason"),
    [
        ("什么是人工智能", "chat", None, None, Tier.FAST, "simple request"),
        ("hello", "chat", None, None, Tier.FAST, "simple request"),
        ("请分析一下这段代码", "chat", None, None, Tier.STRONG, "signal word 分析"),
        ("解释什么是AI", "chat", None, None, Tier.STRONG, "signal word 解释"),
        ("比较 Redis 和 Memcached", "chat", None, None, Tier.STRONG, "signal word 比较"),
        ("Please EXPLAIN recursion", "chat", None, None, Tier.STRONG, "signal word explain"),
        ("compare A and B", "chat", None, None, Tier.STRONG, "signal word compare"),
        ("an analysis of logs", "chat", None, None, Tier.STRONG, "signal word analysis"),
        ("x" * 601, "chat", None, None, Tier.STRONG, "long input (601 chars)"),
        ("x" * 600, "chat", None, None, Tier.FAST, "simple request"),
        ("hello", "planner", None, None, Tier.STRONG, "planner plans with the strong tier"),
        # an explicit task_type wins over the agent kind and the signal words
        ("请分析", "chat", None, "simple", Tier.FAST, "task_type simple"),
        ("hello", "chat", None, "complex", Tier.STRONG, "task_type complex"),
        ("hello", "planner", None, "fast", Tier.FAST, "task_type fast"),
        ("hello", "chat", None, "whatever", Tier.FAST, "simple request"),  # unknown: ignored
        # an explicit configured model wins over everything
        ("请分析", "chat", FAST, "complex", Tier.FAST, f"requested model {FAST}"),
        ("hello", "chat", STRONG, None, Tier.STRONG, f"requested model {STRONG}"),
    ],
)
def test_route(
    content: str, agent: str, model: str | None, task_type: str | None, tier: Tier, reason: str
) -> None:
    chosen = routing.route(
        content,
        agent=agent,
        fast_model=FAST,
        strong_model=STRONG,
        requested_model=model,
        task_type=task_type,
    )
    assert chosen.tier is tier
    assert chosen.model == (FAST if tier is Tier.FAST else STRONG)
    assert chosen.reason == reason


def test_unknown_model_is_refused() -> None:
    with pytest.raises(routing.UnknownModel, match=r"gemini-1\.5-pro"):
        routing.route(
            "hi",
            agent="chat",
            fast_model=FAST,
            strong_model=STRONG,
            requested_model="gemini-1.5-pro",
        )


def test_signal_words_need_a_word_start() -> None:
    """A signal word must start a word: "rewhyx" stays on the fast tier."""
    chosen = routing.route("rewhyx", agent="chat", fast_model=FAST, strong_model=STRONG)
    assert chosen.tier is Tier.FAST
