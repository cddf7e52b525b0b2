"""`tagger`: the seed's interest tagging, deterministic — `{labels, score, reason}`.

The seed's worker answered 智能手表降价通知 with labels ['数码', '降价敏感'], score 95 and the
reason "用户关注了内容: …". This agent reproduces that with keyword rules instead of an LLM call:
a category label per matched product family, an intent label per matched signal, and a score
that rises with each kind of match. It is the default agent and a template for real ones.
"""

from __future__ import annotations

from typing import Any

from agentprod.agents.base import AgentConfig, AgentParams, AgentTask, DeclaredAgent, agent_config
from agentprod.models import JSON

CATEGORIES: dict[str, tuple[str, ...]] = {
    "数码": (
        "键盘",
        "鼠标",
        "手表",
        "手机",
        "耳机",
        "电脑",
        "笔记本",
        "平板",
        "相机",
        "显示器",
        "音箱",
        "智能",
        "数码",
        "keyboard",
        "phone",
        "laptop",
        "watch",
    ),
    "服饰": ("衣", "裤", "鞋", "帽", "外套", "裙", "服装"),
    "食品": ("零食", "咖啡", "茶", "水果", "牛奶", "食品"),
    "家居": ("沙发", "床", "家具", "厨房", "家电", "灯"),
    "美妆": ("口红", "面膜", "护肤", "香水", "化妆"),
}
INTENTS: dict[str, tuple[str, ...]] = {
    "降价敏感": ("降价", "打折", "优惠", "促销", "特价", "折扣", "便宜", "sale", "discount"),
    "新品关注": ("新品", "首发", "上市", "发布"),
}
BASE_SCORE = 35
CATEGORY_POINTS = 30
INTENT_POINTS = 30


def tag(content: str) -> dict[str, JSON]:
    """Labels, score (0-100) and reason for a piece of content."""
    text = content.lower()
    categories = [label for label, words in CATEGORIES.items() if any(w in text for w in words)]
    intents = [label for label, words in INTENTS.items() if any(w in text for w in words)]
    score = BASE_SCORE + CATEGORY_POINTS * bool(categories) + INTENT_POINTS * bool(intents)
    return {
        "labels": categories + intents,
        "score": min(100, score),
        "reason": f"用户关注了内容: {content}",
    }


class TaggerConfig(AgentConfig):
    pass


class TaggerParams(AgentParams):
    pass


class TaggerAgent(DeclaredAgent):
    """No config, no parameters: the content alone decides."""

    Config = TaggerConfig
    Params = TaggerParams

    def __init__(self, config: dict[str, Any]) -> None:
        agent_config(TaggerConfig, config)

    async def run(self, task: AgentTask) -> JSON:
        return tag(task.content)
