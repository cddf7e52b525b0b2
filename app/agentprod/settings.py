"""One typed settings object per process, read from the environment (and `.env`).

Variable names are the seed's (`REDIS_HOST`, `MQ_ENDPOINT`, `MQ_TOPIC_REQUEST`, ...), so users of
the original system can move over unchanged. Invalid values fail at start with a
`ConfigurationError` that names the variable; command-line flags override through
`load_settings(**overrides)` (the CLI passes the flags it was given).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from agentprod.models import Priority, priority_topic
from agentprod.tenancy import parse_rate

_NAME_PATTERN = r"^[%a-zA-Z0-9_-]{1,127}$"  # what RocketMQ accepts for topics and groups
_NAME_MAX = 127


class ConfigurationError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class Settings(BaseSettings):
    """Every knob of the API, the worker and the embedded dev mode."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Redis: REDIS_URL wins over REDIS_HOST/REDIS_PORT/REDIS_DB/REDIS_PASSWORD.
    redis_url: str | None = None
    redis_host: str = "localhost"
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_db: int = Field(default=0, ge=0)
    redis_password: str | None = None

    # RocketMQ: MQ_ENDPOINT is the proxy's gRPC port, MQ_NAMESRV the name server (admin).
    mq_endpoint: str = "127.0.0.1:8081"
    mq_namesrv: str = "127.0.0.1:9876"
    mq_topic_request: str = Field(default="TopicTest", pattern=_NAME_PATTERN)
    #: The topic of `priority: high` tasks; unset: `<MQ_TOPIC_REQUEST>-high` (what the operator
    #: creates for a pipeline).
    mq_topic_request_high: str | None = Field(default=None, pattern=_NAME_PATTERN)
    mq_topic_result: str = Field(default="TopicResult", pattern=_NAME_PATTERN)
    mq_group_agent: str = Field(default="GID_AGENT_PYTHON", pattern=_NAME_PATTERN)
    mq_access_key: str = ""
    mq_secret_key: str = ""
    mq_namespace: str = ""
    mq_request_timeout_seconds: int = Field(default=3, ge=1, le=60)
    #: Deliveries after the first before a task fails; keep it equal to the consumer group's
    #: retryMaxTimes (the broker dead-letters the message after retryMaxTimes + 1 deliveries).
    mq_max_retries: int = Field(default=16, ge=0, le=64)

    # Agents.
    agent: str = "tagger"
    #: JSON object handed to the agent factory (`AGENT_CONFIG='{"seconds": 0.02}'`).
    agent_config: dict[str, Any] = Field(default_factory=dict)
    #: Enable the test agents (`echo`, `sleep`): for tests and benchmarks, never production.
    test_agents: bool = Field(
        default=False, validation_alias=AliasChoices("agentprod_test_agents", "test_agents")
    )

    # Worker.
    worker_concurrency: int = Field(default=8, ge=1, le=1024)
    #: Slots beyond WORKER_CONCURRENCY that only high-priority tasks take: a high task starts
    #: even while every slot runs a normal one (and every freed slot goes to high tasks first).
    worker_priority_slots: int = Field(default=1, ge=1, le=1024)
    #: Seconds a received message stays invisible; renewed while the task runs (≥ 10, proxy rule).
    worker_invisible_seconds: int = Field(default=30, ge=10, le=43200)
    #: Long-poll wait of one receive call (the proxy refuses polls it cannot hold for 5 s).
    worker_await_seconds: int = Field(default=5, ge=5, le=30)
    #: Seconds in-flight tasks get to finish after SIGTERM (match terminationGracePeriodSeconds).
    worker_shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    #: First redelivery delay after an agent error; doubles per attempt, capped at 60 s.
    worker_retry_backoff_seconds: float = Field(default=1.0, ge=0, le=3600)
    #: Per-task limit on the agent's run time; 0 disables it.
    worker_task_timeout_seconds: float = Field(default=0, ge=0)
    #: Runs of one task whose worker was lost (its lease expired: crash, OOM kill) before the
    #: task fails with "worker lost N times" instead of taking down worker after worker.
    worker_max_lost_attempts: int = Field(default=3, ge=1, le=100)
    #: Settle dead-lettered tasks as `failed` (a consumer of `%DLQ%<group>` in each worker).
    worker_dead_letters: bool = True
    worker_health_host: str = "0.0.0.0"
    worker_health_port: int = Field(default=8001, ge=0, le=65535)

    # Task records.
    #: Seconds a finished task (state and result) is kept in Redis.
    task_result_ttl_seconds: int = Field(default=86400, ge=1)
    #: Seconds an unfinished task record is kept (a backstop, far above any retry schedule).
    task_pending_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    idempotency_ttl_seconds: int = Field(default=86400, ge=1)

    # Completion webhooks (`callback_url`): the workers sign and send them, the API checks URLs.
    #: HMAC-SHA256 key of `X-Agentprod-Signature`; a callback_url is refused (422) without it.
    webhook_secret: str = ""
    #: Deliveries of one callback before it is given up (each attempt is recorded).
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    #: Wait after the first failed delivery; doubles per attempt, capped at 5 minutes.
    webhook_backoff_seconds: float = Field(default=2.0, ge=0, le=3600)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: Allow callbacks to loopback addresses (tests, a receiver beside the worker).
    webhook_allow_loopback: bool = False
    #: Allow callbacks to link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10).
    webhook_allow_link_local: bool = False
    webhook_require_https: bool = False

    # API.
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8000, ge=1, le=65535)
    #: Largest accepted `content`, in UTF-8 bytes (413 above it).
    max_content_bytes: int = Field(default=64 * 1024, ge=1, le=4 * 1024 * 1024 - 65536)
    #: Seconds a client is told to wait (Retry-After) when a dependency is down.
    retry_after_seconds: int = Field(default=5, ge=1)
    #: `required`: every route but /healthz and /readyz needs an API key (`agentprod keys`);
    #: `off`: no keys, every caller is tenant `public` (behind a gateway that authenticates).
    api_auth: Literal["required", "off"] = "required"
    #: Requests per key per window for keys created without `--rate` (limits notation).
    api_rate_limit: str = "600/minute"
    #: Unfinished tasks a tenant may have, for keys created without `--max-queued`.
    api_max_queued_tasks: int = Field(default=10_000, ge=1)
    #: /docs, /redoc and /openapi.json: `protected` (a key needed when auth is on), `public`
    #: or `off`.
    api_docs: Literal["protected", "public", "off"] = "protected"
    #: /metrics: `protected`, `public` or `off` on the API port; with API_METRICS_PORT > 0 it
    #: is served there instead (for Prometheus, no key) and never on the API port.
    api_metrics: Literal["protected", "public", "off"] = "protected"
    api_metrics_port: int = Field(default=0, ge=0, le=65535)
    #: Strict-Transport-Security max-age, for an API served over TLS only; 0: no header.
    api_hsts_seconds: int = Field(default=0, ge=0)
    #: Origins allowed by CORS (`API_CORS_ORIGINS='["https://app.example"]'`); empty: CORS off.
    api_cors_origins: list[str] = Field(default_factory=list)
    #: Bounds of a task's `metadata`: encoded size, nesting depth.
    metadata_max_bytes: int = Field(default=16 * 1024, ge=256, le=1024 * 1024)
    metadata_max_depth: int = Field(default=8, ge=1, le=64)
    #: Every task has a deadline: `deadline_seconds` in the request, at most (and by default)
    #: this; a task not finished by then fails with "deadline exceeded".
    task_deadline_seconds: int = Field(default=3600, ge=1, le=7 * 86400)

    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    #: `json` (one object per line with task_id and trace_id, see agentprod.logs) or `text`;
    #: unset, `agentprod dev` writes text and the servers JSON.
    log_format: str | None = Field(default=None, pattern="^(json|text)$")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("api_rate_limit")
    @classmethod
    def _readable_rate(cls, value: str) -> str:
        parse_rate(value)  # InvalidLimit is a ValueError: named API_RATE_LIMIT by load_settings
        return value

    @model_validator(mode="after")
    def _distinct_topics(self) -> Settings:
        if self.mq_topic_request == self.mq_topic_result:
            raise ValueError("MQ_TOPIC_RESULT must differ from MQ_TOPIC_REQUEST")
        high = self.mq_topic_request_priority
        if high in (self.mq_topic_request, self.mq_topic_result):
            raise ValueError(
                "MQ_TOPIC_REQUEST_HIGH must differ from MQ_TOPIC_REQUEST and MQ_TOPIC_RESULT"
            )
        if len(high) > _NAME_MAX:
            raise ValueError(
                f"MQ_TOPIC_REQUEST_HIGH: {high!r} is longer than {_NAME_MAX} characters "
                "(set it, or shorten MQ_TOPIC_REQUEST)"
            )
        return self

    @property
    def mq_topic_request_priority(self) -> str:
        """The topic `priority: high` tasks go to."""
        return self.mq_topic_request_high or priority_topic(self.mq_topic_request)

    def request_topic(self, priority: Priority) -> str:
        """The request topic of a task of this priority."""
        if priority is Priority.HIGH:
            return self.mq_topic_request_priority
        return self.mq_topic_request

    @property
    def redis_dsn(self) -> str:
        """The Redis URL, built from the host/port variables unless REDIS_URL is set."""
        if self.redis_url:
            return self.redis_url
        auth = f":{self.redis_password}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    @property
    def max_attempts(self) -> int:
        """Deliveries a task gets before it is failed for good."""
        return self.mq_max_retries + 1


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, apply non-None overrides, and name the variable on any error."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None
    except SettingsError as error:  # a complex value (AGENT_CONFIG) that is not valid JSON
        field = str(error).split('"')[1] if '"' in str(error) else "configuration"
        cause = error.__cause__ or error
        raise ConfigurationError(
            f"invalid configuration: {field.upper()}: not valid JSON ({cause})"
        ) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        name = field.upper() if field else "configuration"
        problems.append(f"{name}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)
