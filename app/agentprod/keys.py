"""Every Redis key the product writes, in one place (tests and the operator read them too)."""

PREFIX = "agentprod"


def task(task_id: str) -> str:
    """Hash holding one task's record."""
    return f"{PREFIX}:task:{task_id}"


def idempotency(scope: str, key: str) -> str:
    """String `task_id|fingerprint` remembered for an Idempotency-Key, per caller."""
    return f"{PREFIX}:idem:{scope}:{key}"


def running(group: str) -> str:
    """Sorted set of tasks running for a consumer group, scored by lease expiry (ms).

    The operator counts it as the pipeline's in-flight work.
    """
    return f"{PREFIX}:running:{group}"
