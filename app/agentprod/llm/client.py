"""The one model client: the official openai SDK (async) against any OpenAI-compatible server.

Every failure is classified for the worker (`ProviderError` subclasses):
- `ProviderRetryLater`: 429 or 503 with a Retry-After (or retry-after-ms) header: put the task
  back for that long, never sleep on it;
- `ProviderTransient`: other 429/5xx, timeouts, connection errors: retry with backoff;
- `ProviderRejected`: any other 4xx (bad request, auth, unknown model): fail at once with the
  provider's message.
The SDK's own retries are off by default (`LLM_MAX_RETRIES`), so the decision stays here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from agentprod.llm import costs
from agentprod.llm.config import LLMSettings

if TYPE_CHECKING:  # the SDK is imported where a client is made: processes without a model
    import openai  # (the API, a tagger worker) never load it (~0.9 s and ~30 MB at import)


class ProviderError(Exception):
    """A model call failed; subclasses say whether retrying can help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderRetryLater(ProviderError):
    def __init__(self, message: str, *, status: int | None, after_seconds: float) -> None:
        super().__init__(message, status=status)
        self.after_seconds = after_seconds


class ProviderTransient(ProviderError):
    pass


class ProviderRejected(ProviderError):
    pass


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """Everything that shapes a completion (and so the cache key)."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float = 0.0
    max_tokens: int | None = None
    top_p: float | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    seed: int | None = None

    def body(self) -> dict[str, Any]:
        """The request's parameters, without the unset ones."""
        fields = {
            "model": self.model,
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "response_format": self.response_format,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "seed": self.seed,
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclasses.dataclass(frozen=True)
class Completion:
    text: str
    model: str  # as the server reported it (may differ from the requested alias)
    usage: costs.Usage | None
    latency_ms: float
    finish_reason: str | None
    tool_calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "usage": self.usage.as_json() if self.usage else None,
            "latency_ms": self.latency_ms,
            "finish_reason": self.finish_reason,
            "tool_calls": self.tool_calls,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Completion:
        return cls(
            text=str(data.get("text") or ""),
            model=str(data.get("model") or ""),
            usage=costs.usage_from(data.get("usage")),
            latency_ms=float(data.get("latency_ms") or 0.0),
            finish_reason=data.get("finish_reason"),
            tool_calls=list(data.get("tool_calls") or []),
        )


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds from `retry-after-ms`, or `retry-after` as seconds or an HTTP date; else None."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def classify_status(
    status: int, headers: Mapping[str, str], message: str, *, now: float, cap_seconds: float
) -> ProviderError:
    """The `ProviderError` for an HTTP error answer (pure)."""
    text = f"model server answered {status}: {message}"
    if status in (429, 503):
        after = retry_after_seconds(headers, now=now)
        if after is not None:
            return ProviderRetryLater(text, status=status, after_seconds=min(after, cap_seconds))
        return ProviderTransient(text, status=status)
    if status >= 500 or status in (408, 409):
        return ProviderTransient(text, status=status)
    return ProviderRejected(text, status=status)


class ModelClient:
    """Async chat completions with classified errors; one per process."""

    def __init__(self, settings: LLMSettings, *, client: openai.AsyncOpenAI | None = None):
        import openai

        self._settings = settings
        self._client = client or openai.AsyncOpenAI(
            api_key=settings.api_key or "unset",
            base_url=settings.base_url,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            http_client=_http_client(settings),
        )

    async def close(self) -> None:
        await self._client.close()

    @contextlib.asynccontextmanager
    async def _classified(self) -> AsyncIterator[None]:
        """Turn the SDK's errors into `ProviderError`s."""
        import openai

        try:
            yield
        except openai.APIStatusError as error:
            raise classify_status(
                error.status_code,
                dict(error.response.headers),
                _message(error),
                now=time.time(),
                cap_seconds=self._settings.llm_retry_after_max_seconds,
            ) from error
        except openai.APITimeoutError as error:
            raise ProviderTransient(f"model call timed out: {error}") from error
        except openai.APIConnectionError as error:
            raise ProviderTransient(f"model server unreachable: {error}") from error
        except openai.APIError as error:  # broken mid-stream
            raise ProviderTransient(f"model stream failed: {error}") from error

    async def _post(
        self, body: dict[str, Any], *, limit_seconds: float | None, stream: bool = False
    ) -> Any:
        """`POST /chat/completions` with `body` as it is, through the SDK's client.

        `chat.completions.create` first walks every parameter against the SDK's TypedDicts
        (`async_maybe_transform`), which for the plain JSON `ChatRequest.body` builds changes
        nothing: 11 % of a 1,024-slot chat worker's CPU (docs/benchmarks.md). The SDK's
        `post`, its way to any endpoint, keeps everything else: the transport, the timeout,
        its retries, the answer parsed into `ChatCompletion` (or a stream of chunks), its
        errors.
        """
        from openai import AsyncStream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        timeout = limit_seconds or self._settings.llm_timeout_seconds
        return await self._client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options={"timeout": timeout},
            stream=stream,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )

    async def stream(
        self,
        request: ChatRequest,
        *,
        on_delta: Callable[[str], Awaitable[None]],
        limit_seconds: float | None = None,
    ) -> Completion:
        """The completion, streamed: `on_delta` gets each piece of text as the server sends
        it; usage comes from the server's last chunk (`stream_options.include_usage`)."""
        started = time.perf_counter()
        parts: list[str] = []
        model = request.model
        usage: costs.Usage | None = None
        finish_reason: str | None = None
        async with self._classified():
            chunks = await self._post(
                {**request.body(), "stream": True, "stream_options": {"include_usage": True}},
                limit_seconds=limit_seconds,
                stream=True,
            )
            async for chunk in chunks:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = costs.usage_from(chunk.usage)
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        await on_delta(choice.delta.content)
                    finish_reason = choice.finish_reason or finish_reason
        return Completion(
            text="".join(parts),
            model=model,
            usage=usage,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            finish_reason=finish_reason,
        )

    async def complete(
        self, request: ChatRequest, *, limit_seconds: float | None = None
    ) -> Completion:
        started = time.perf_counter()
        async with self._classified():
            answer = await self._post(request.body(), limit_seconds=limit_seconds)
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if not answer.choices:
            raise ProviderTransient("model server answered without choices")
        choice = answer.choices[0]
        calls = [call.model_dump(mode="json") for call in (choice.message.tool_calls or [])]
        return Completion(
            text=choice.message.content or "",
            model=answer.model or request.model,
            usage=costs.usage_from(answer.usage),
            latency_ms=latency_ms,
            finish_reason=choice.finish_reason,
            tool_calls=calls,
        )


def _http_client(settings: LLMSettings) -> Any:
    """The SDK's HTTP client on the configured transport, one keep-alive connection per slot
    (the SDK's own default keeps 100 and closes the rest after each call)."""
    import httpx2
    import openai

    size = settings.model_connections
    limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
    if settings.llm_http_transport == "aiohttp":
        return openai.DefaultAioHttpClient(limits=limits)
    return openai.DefaultAsyncHttpxClient(limits=limits)


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(error.message)
