"""Best-effort counter writes to Redis hashes, several in one round trip.

The ledger and the provider signals both add numbers to hash fields after each model call;
`Increment`/`Expire` describe those writes so one call's ledger and signal updates go out as
one pipeline (`apply`). A Redis error is logged, never raised: accounting never fails a task.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Increment:
    key: str
    field: str
    amount: float  # an int is written with HINCRBY, a float with HINCRBYFLOAT


@dataclasses.dataclass(frozen=True)
class Expire:
    key: str
    seconds: int


Write = Increment | Expire


async def apply(client: Any, writes: Sequence[Write], *, what: str) -> None:
    """All `writes` in one non-transactional pipeline; a failure is logged with `what`."""
    if not writes:
        return
    try:
        async with client.pipeline(transaction=False) as pipe:
            for write in writes:
                if isinstance(write, Expire):
                    pipe.expire(write.key, write.seconds)
                elif isinstance(write.amount, int):
                    pipe.hincrby(write.key, write.field, write.amount)
                else:
                    pipe.hincrbyfloat(write.key, write.field, write.amount)
            await pipe.execute()
    except Exception as error:  # best effort
        log.warning("%s write failed: %s", what, error)
