"""Per-model requests-per-minute and tokens-per-minute limits shared by every worker (Redis).

A call first reserves one request and its estimated tokens in the current minute window,
atomically (Lua): a reservation that would go over either limit is refused with the seconds
left in the window, and the agent puts its task back for that long instead of calling. After
the call the estimate is corrected with the real usage. Limits of 0 mean no limit.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

from agentprod import keys

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60

_RESERVE = """
local f = redis.call('HMGET', KEYS[1], 'requests', 'tokens')
local requests = tonumber(f[1]) or 0
local tokens = tonumber(f[2]) or 0
local rpm, tpm, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if (rpm > 0 and requests + 1 > rpm) or (tpm > 0 and tokens > 0 and tokens + want > tpm) then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HINCRBY', KEYS[1], 'tokens', want)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


@dataclasses.dataclass(frozen=True)
class Reservation:
    model: str
    window: int
    tokens: int


class RateLimited(Exception):
    def __init__(self, model: str, after_seconds: float) -> None:
        super().__init__(f"rate limit of {model} reached; next window in {after_seconds:.0f}s")
        self.model = model
        self.after_seconds = after_seconds


def window_of(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def seconds_to_next_window(now: float) -> float:
    return max(1.0, math.ceil((window_of(now) + 1) * WINDOW_SECONDS - now))


def estimate_tokens(messages: list[dict[str, Any]], max_tokens: int | None) -> int:
    """A rough upper estimate (4 characters a token) of a call's tokens, for reservation."""
    chars = sum(len(str(message.get("content") or "")) for message in messages)
    return chars // 4 + 1 + (max_tokens or 0)


class RateLimiter:
    def __init__(self, client: Any, *, rpm: int, tpm: int) -> None:
        self._redis = client
        self.rpm = rpm
        self.tpm = tpm
        self._reserve = client.register_script(_RESERVE)

    @property
    def enabled(self) -> bool:
        return self.rpm > 0 or self.tpm > 0

    async def reserve(self, model: str, *, tokens: int, now: float | None = None) -> Reservation:
        """Reserve a call, or raise `RateLimited` with the wait until the next window."""
        moment = time.time() if now is None else now
        window = window_of(moment)
        if not self.enabled:
            return Reservation(model=model, window=window, tokens=0)
        try:
            granted = await self._reserve(
                keys=[keys.llm_rate(model, window)],
                args=[self.rpm, self.tpm, tokens, WINDOW_SECONDS * 2],
            )
        except Exception as error:  # Redis down: let the call through rather than stall
            log.warning("rate limit check failed (call allowed): %s", error)
            return Reservation(model=model, window=window, tokens=0)
        if not int(granted):
            raise RateLimited(model, seconds_to_next_window(moment))
        return Reservation(model=model, window=window, tokens=tokens)

    async def settle(self, reservation: Reservation, *, used_tokens: int | None) -> None:
        """Replace the estimate with the tokens really used (kept when usage is unknown)."""
        if not self.enabled or used_tokens is None:
            return
        delta = used_tokens - reservation.tokens
        if delta:
            try:
                await self._redis.hincrby(
                    keys.llm_rate(reservation.model, reservation.window), "tokens", delta
                )
            except Exception as error:
                log.warning("rate limit settle failed: %s", error)
