"""Settings: the seed's variable names, REDIS_URL precedence, errors that name the variable."""

import pytest
from agentprod.settings import ConfigurationError, load_settings


def test_seed_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # no .env
    settings = load_settings()
    assert settings.mq_topic_request == "TopicTest"
    assert settings.mq_topic_result == "TopicResult"
    assert settings.mq_group_agent == "GID_AGENT_PYTHON"
    assert settings.redis_dsn == "redis://localhost:6379/0"
    assert settings.max_attempts == 17


def test_redis_url_wins_over_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "cache")
    monkeypatch.setenv("REDIS_PORT", "6380")
    assert load_settings().redis_dsn == "redis://cache:6380/0"
    monkeypatch.setenv("REDIS_URL", "redis://other:1/2")
    assert load_settings().redis_dsn == "redis://other:1/2"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_PORT", "not-a-port"),
        ("REDIS_PORT", "70000"),
        ("MQ_TOPIC_REQUEST", "bad topic!"),
        ("WORKER_CONCURRENCY", "0"),
        ("WORKER_INVISIBLE_SECONDS", "5"),
        ("AGENT_CONFIG", "{not json"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_same_topic_for_requests_and_results_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQ_TOPIC_RESULT", "TopicTest")
    with pytest.raises(ConfigurationError, match="MQ_TOPIC_RESULT"):
        load_settings()


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "4")
    assert load_settings(worker_concurrency=16, api_port=None).worker_concurrency == 16
