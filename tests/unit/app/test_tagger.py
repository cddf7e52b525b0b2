"""The tagger reproduces the seed's result for its example contents, deterministically."""

import pytest
from agentprod.agents import registry
from agentprod.agents.base import AgentTask
from agentprod.agents.tagger import tag


@pytest.mark.parametrize(
    "content", ["机械键盘降价了", "智能手表降价通知", "测试：智能手表降价通知"]
)
def test_seed_examples(content: str) -> None:
    assert tag(content) == {
        "labels": ["数码", "降价敏感"],
        "score": 95,
        "reason": f"用户关注了内容: {content}",
    }


@pytest.mark.parametrize(
    ("content", "labels", "score"),
    [
        ("今天天气不错", [], 35),
        ("新款外套", ["服饰"], 65),
        ("咖啡打折", ["食品", "降价敏感"], 95),
        ("新品手机首发", ["数码", "新品关注"], 95),
    ],
)
def test_labels_and_score(content: str, labels: list[str], score: int) -> None:
    result = tag(content)
    assert result["labels"] == labels
    assert result["score"] == score


async def test_registered_under_its_name() -> None:
    agent = registry.create("tagger", {})
    task = AgentTask(task_id="t", user_id="u", content="机械键盘降价了", metadata={}, attempt=1)
    assert (await agent.run(task))["score"] == 95


def test_registry_names_builtins_and_rejects_unknown() -> None:
    assert {"tagger", "echo", "sleep"} <= set(registry.names())
    with pytest.raises(registry.UnknownAgent, match="nope"):
        registry.create("nope", {})
