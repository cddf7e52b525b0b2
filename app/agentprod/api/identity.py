"""Who is calling: the API key of every request, its tenant, and its rate window.

Every route but the probes takes `caller`. With `API_AUTH=required` (the default outside
`agentprod dev`) the key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`; a missing,
unknown or revoked key answers 401, and a key over its rate answers 429 with `Retry-After`.
The rate headers of an allowed request ride on the response (`response_headers` middleware).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem

from agentprod import tenancy
from agentprod.api import errors
from agentprod.api.services import Services

#: Where the rate headers of an allowed request wait for the response (`request.state`).
RATE_HEADERS_STATE = "rate_headers"

bearer = HTTPBearer(auto_error=False, description="An agentprod API key (`agentprod keys create`).")
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same key, for clients without Bearer."
)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling: a tenant (and its key, None when auth is off) and the tenant's cap."""

    tenant: str = tenancy.OPEN_TENANT
    key_id: str | None = None
    max_queued: int = 10_000


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> Caller:
    services: Services = request.app.state.services
    settings = services.settings
    if settings.api_auth == "off":
        return Caller(max_queued=settings.api_max_queued_tasks)
    presented = credentials.credentials if credentials else header_key
    if not presented:
        raise _unauthorized(
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )
    key_id = tenancy.key_id_of(presented)
    stored = await services.keys.get(key_id) if key_id else None
    if stored is None or not tenancy.matches(stored, presented):
        raise _unauthorized("the API key is not valid (unknown, malformed or revoked)")
    now = time.time()
    window = await services.limiter.hit(_rate(stored.rate), "key", stored.key_id)
    headers = tenancy.rate_headers(window, now=now)
    if not window.allowed:
        raise errors.ClientError(
            429,
            "Authorization",
            f"rate limit {stored.rate} of key {stored.key_id} reached; "
            f"retry after {headers['Retry-After']} s",
            "rate_limited",
            headers=headers,
        )
    setattr(request.state, RATE_HEADERS_STATE, headers)
    return Caller(tenant=stored.tenant, key_id=stored.key_id, max_queued=stored.max_queued)


@functools.lru_cache(maxsize=256)
def _rate(text: str) -> RateLimitItem:
    return tenancy.parse_rate(text)


def _unauthorized(message: str) -> errors.ClientError:
    return errors.ClientError(
        401, "Authorization", message, "unauthorized", headers={"WWW-Authenticate": "Bearer"}
    )
