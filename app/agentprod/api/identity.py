"""Who is calling: a FastAPI dependency every route takes, so per-tenant keys slot in here."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling. Anonymous for now; API keys per tenant will fill it in."""

    tenant: str = "public"


async def caller() -> Caller:
    return Caller()
