"""Every Redis key the product writes, in one place (tests and the operator read them too)."""

PREFIX = "agentprod"


def task(task_id: str) -> str:
    """Hash holding one task's record."""
    return f"{PREFIX}:task:{task_id}"


def refused(task_id: str) -> str:
    """Marker of a task whose submission was refused (503): its message, should one still
    arrive, is dropped; without the marker a missing record means Redis lost it."""
    return f"{PREFIX}:refused:{task_id}"


def idempotency(tenant: str, user_id: str, key: str) -> str:
    """String `task_id|fingerprint` remembered for an Idempotency-Key, per tenant and user.

    Each part is length-prefixed, so no two scopes can spell the same Redis key (without the
    lengths `user:x` + `k` and `user` + `x:k` would collide)."""
    return f"{PREFIX}:idem:{len(tenant)}:{tenant}:{len(user_id)}:{user_id}:{key}"


def api_key(key_id: str) -> str:
    """Hash of one API key: tenant, name, SHA-256 digest, limits, created/revoked times."""
    return f"{PREFIX}:apikey:{key_id}"


def api_keys() -> str:
    """Sorted set of every API key id, scored by creation time (`agentprod keys list`)."""
    return f"{PREFIX}:apikeys"


def open_tasks(tenant: str) -> str:
    """Sorted set of a tenant's unfinished tasks, scored by creation time (epoch seconds): the
    per-tenant cap on queued tasks counts it. Every terminal transition removes its task."""
    return f"{PREFIX}:open:{tenant}"


OPEN_TASKS_PREFIX = f"{PREFIX}:open:"  # the Lua scripts build `open_tasks` from a record's tenant


def dead_lettered(group: str) -> str:
    """Sorted set of tasks the broker dead-lettered for a consumer group, scored by when they
    were settled `failed` (epoch seconds); `agentprod dlq` lists and re-drives them."""
    return f"{PREFIX}:dead:{group}"


def dead_letter_group(group: str) -> str:
    """The consumer group that reads `%DLQ%<group>` (not a Redis key: kept with the names)."""
    return f"{group}_DLQ"


def running(group: str) -> str:
    """Sorted set of tasks running for a consumer group, scored by lease expiry (ms).

    The operator counts it as the pipeline's in-flight work.
    """
    return f"{PREFIX}:running:{group}"


def llm_cache_prefix() -> str:
    """Prefix of the response cache's entries: `<prefix><sha256 hex>` strings with a TTL."""
    return f"{PREFIX}:llm:cache:"


def llm_cache_lru() -> str:
    """Sorted set of cache digests scored by last use (ms): the LRU order of the entries."""
    return f"{PREFIX}:llm:cache-lru"


def llm_cache_stats() -> str:
    """Hash of the response cache's counters: hits, misses, writes, evictions."""
    return f"{PREFIX}:llm:cache-stats"


def llm_usage(tenant: str | None = None) -> str:
    """Hash of per-model call counters, fields `<model>|calls`, `<model>|cost_usd`, ...: the
    whole fleet's, or one tenant's (what its `GET /stats` shows)."""
    return f"{PREFIX}:llm:usage" if tenant is None else f"{PREFIX}:llm:usage:{tenant}"


def llm_rate(model: str, window: int) -> str:
    """Hash of one model's requests and tokens in one minute window (expires after it)."""
    return f"{PREFIX}:llm:rate:{model}:{window}"


def llm_signals(group: str, bucket: int) -> str:
    """Hash of a consumer group's model-side signals in one SIGNAL_BUCKET_SECONDS bucket:
    ok, throttled (provider 429/503), limited (own rpm/tpm limiter refusals), call_ms, tokens.
    The operator's scaler reads the newest buckets to cap replicas (expires after 5 min)."""
    return f"{PREFIX}:llm:signals:{group}:{bucket}"


def pipelines() -> str:
    """Hash `namespace/name` → the latest JSON snapshot of a pipeline the operator wrote
    (lag, in-flight, replicas, decision, conditions, dead letters) for the console."""
    return f"{PREFIX}:pipelines"


def pipeline_samples(namespace: str, name: str) -> str:
    """Stream of a pipeline's snapshots over time, one per scaling pass (the console's chart);
    capped by length, see `console.state.SAMPLES_KEPT`."""
    return f"{PREFIX}:pipeline:{namespace}/{name}:samples"


def tenant_tasks(tenant: str) -> str:
    """Sorted set of one tenant's task ids scored by creation time (epoch seconds): what
    `GET /tasks` pages through. Entries older than the longest record TTL are trimmed on each
    write; those whose record expired earlier are pruned by the listing that meets them."""
    return f"{PREFIX}:tasks:{tenant}"


def events(task_id: str) -> str:
    """Stream of one task's events (status changes, agent progress, the outcome), bounded in
    length and expiring with the record: what `GET /tasks/{id}/events` serves."""
    return f"{PREFIX}:events:{task_id}"


def cancellations() -> str:
    """Pub/sub channel the cancel of a running task is announced on (message = task id);
    every worker listens and stops the task if it runs it."""
    return f"{PREFIX}:cancel"


def callback_attempts(task_id: str) -> str:
    """List of one task's webhook delivery attempts (JSON each), expiring with the record."""
    return f"{PREFIX}:callbacks:{task_id}"
