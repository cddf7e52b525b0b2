"""`agentprod keys create | list | revoke`: the API keys of the tenants, in Redis.

`create` prints the key once (only its SHA-256 is stored) with its id; `list` shows ids,
tenants, names, limits and whether revoked; `revoke ID` ends a key at once (the next request
with it answers 401). Settings come from the environment like the API's (REDIS_URL, ...);
keys created without `--rate`/`--max-queued` get API_RATE_LIMIT / API_MAX_QUEUED_TASKS.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from agentprod import store as stores
from agentprod import tenancy
from agentprod.settings import Settings
from agentprod.store import StoreUnavailable


class KeyUsageError(ValueError):
    """A flag has a value the command cannot use; the message names the flag."""


def run(
    settings: Settings,
    *,
    action: str,
    tenant: str | None = None,
    name: str = "",
    rate: str | None = None,
    max_queued: int | None = None,
    key_ids: list[str] | None = None,
    as_json: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    try:
        return asyncio.run(
            _run(
                stores.KeyStore(stores.connect(settings.redis_dsn)),
                settings,
                action=action,
                tenant=tenant,
                name=name,
                rate=rate,
                max_queued=max_queued,
                key_ids=key_ids or [],
                as_json=as_json,
                out=out,
            )
        )
    except KeyUsageError as error:
        print(f"agentprod keys: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"agentprod keys: Redis at {settings.redis_dsn}: {error}", file=sys.stderr)
        return 2


async def create(
    keys: stores.KeyStore, *, tenant: str, name: str, rate: str, max_queued: int
) -> tuple[str, tenancy.ApiKey]:
    """Make and store a key; (the plaintext, shown once; the stored record)."""
    if not tenancy.valid_tenant(tenant):
        raise KeyUsageError(f"--tenant {tenant!r}: use {tenancy.TENANT_PATTERN}")
    try:
        tenancy.parse_rate(rate)
    except tenancy.InvalidLimit as error:
        raise KeyUsageError(f"--rate: {error}") from None
    if max_queued < 1:
        raise KeyUsageError(f"--max-queued {max_queued}: must be at least 1")
    made = tenancy.new_key()
    record = tenancy.ApiKey(
        key_id=made.key_id,
        tenant=tenant,
        name=name,
        digest=made.digest,
        created_at=time.time(),
        rate=rate,
        max_queued=max_queued,
    )
    await keys.add(record)
    return made.plaintext, record


async def _run(
    keys: stores.KeyStore,
    settings: Settings,
    *,
    action: str,
    tenant: str | None,
    name: str,
    rate: str | None,
    max_queued: int | None,
    key_ids: list[str],
    as_json: bool,
    out: TextIO,
) -> int:
    if action == "create":
        if not tenant:
            raise KeyUsageError("create needs --tenant NAME")
        plaintext, record = await create(
            keys,
            tenant=tenant,
            name=name,
            rate=rate or settings.api_rate_limit,
            max_queued=max_queued or settings.api_max_queued_tasks,
        )
        if as_json:
            print(json.dumps({"key": plaintext, **_row(record)}), file=out)
        else:
            print(plaintext, file=out)
            print(
                f"key {record.key_id} for tenant {record.tenant} ({record.rate}, "
                f"{record.max_queued} queued tasks); shown once — store it now",
                file=sys.stderr,
            )
        return 0
    if action == "list":
        rows = [_row(key) for key in await keys.all()]
        if as_json:
            print(json.dumps(rows), file=out)
        for row in [] if as_json else rows:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
            print(
                f"{row['key_id']}  {row['tenant']}  {row['name'] or '-'}  {row['rate']}  "
                f"max-queued {row['max_queued']}  created {row['created_at']}  {state}",
                file=out,
            )
        return 0
    if not key_ids:
        raise KeyUsageError("revoke needs at least one KEY_ID (see `agentprod keys list`)")
    missing = 0
    for key_id in key_ids:
        if await keys.revoke(key_id, now=time.time()):
            print(f"revoked {key_id}", file=out)
        else:
            print(f"agentprod keys: no key {key_id}", file=sys.stderr)
            missing += 1
    return 1 if missing else 0


def _row(key: tenancy.ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "tenant": key.tenant,
        "name": key.name,
        "rate": key.rate,
        "max_queued": key.max_queued,
        "created_at": _when(key.created_at),
        "revoked_at": _when(key.revoked_at) if key.revoked_at else None,
    }


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
