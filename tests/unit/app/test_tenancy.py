"""API key hashing and the rate-limit arithmetic (pure: no Redis)."""

from __future__ import annotations

import pytest
from agentprod import keys, store_lua, tenancy
from agentprod.decisions import run_budget
from agentprod.models import json_problem


def test_a_new_key_is_stored_only_as_its_digest() -> None:
    made = tenancy.new_key()
    assert made.plaintext.startswith(f"ap_{made.key_id}_")
    assert made.digest == tenancy.digest_of(made.plaintext) != made.plaintext
    assert made.plaintext not in made.digest
    assert tenancy.key_id_of(made.plaintext) == made.key_id
    assert tenancy.new_key().plaintext != made.plaintext


@pytest.mark.parametrize(
    "text", ["", "ap_", "nonsense", "ap_XYZ_secret", "ap_0123456789ab_short", "Bearer ap_x_y"]
)
def test_malformed_keys_have_no_id(text: str) -> None:
    assert tenancy.key_id_of(text) is None


def stored(made: tenancy.NewKey, *, revoked_at: float | None = None) -> tenancy.ApiKey:
    return tenancy.ApiKey(
        key_id=made.key_id,
        tenant="acme",
        name="",
        digest=made.digest,
        created_at=1.0,
        rate="10/minute",
        max_queued=5,
        revoked_at=revoked_at,
    )


def test_a_key_matches_only_itself_and_only_while_active() -> None:
    made = tenancy.new_key()
    assert tenancy.matches(stored(made), made.plaintext)
    assert not tenancy.matches(stored(made), made.plaintext[:-1] + "x")
    assert not tenancy.matches(stored(made), tenancy.new_key().plaintext)
    assert not tenancy.matches(stored(made, revoked_at=2.0), made.plaintext)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("acme", True), ("a-b.c_1", True), ("", False), ("Acme", False), ("a:b", False)],
)
def test_tenant_names(name: str, valid: bool) -> None:
    assert tenancy.valid_tenant(name) is valid


def test_rates_are_read_or_refused() -> None:
    assert tenancy.parse_rate("600/minute").amount == 600
    assert tenancy.parse_rate("5/2 second").get_expiry() == 2
    with pytest.raises(tenancy.InvalidLimit, match="lots"):
        tenancy.parse_rate("lots")


def test_rate_headers_of_an_allowed_request() -> None:
    window = tenancy.Window(allowed=True, limit=10, remaining=7, reset_at=1000.2)
    headers = tenancy.rate_headers(window, now=990.0)
    assert headers == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "7",
        "RateLimit-Reset": "11",
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": "1001",
    }


def test_a_refused_request_gets_retry_after_of_at_least_a_second() -> None:
    late = tenancy.Window(allowed=False, limit=10, remaining=-1, reset_at=1000.0)
    assert tenancy.rate_headers(late, now=1000.0)["Retry-After"] == "1"
    assert tenancy.rate_headers(late, now=1000.0)["RateLimit-Remaining"] == "0"
    assert tenancy.rate_headers(late, now=990.5)["Retry-After"] == "10"


def test_idempotency_keys_cannot_collide_across_scopes() -> None:
    assert keys.idempotency("t", "user:x", "k") != keys.idempotency("t", "user", "x:k")
    assert keys.idempotency("a:b", "c", "k") != keys.idempotency("a", "b:c", "k")


def test_the_lua_scripts_name_the_open_tasks_set_like_keys() -> None:
    assert store_lua.OPEN_TASKS == keys.OPEN_TASKS_PREFIX
    assert keys.open_tasks("acme") == store_lua.OPEN_TASKS + "acme"


@pytest.mark.parametrize(
    ("timeout", "left", "seconds", "by_deadline"),
    [
        (0, None, None, False),
        (30, None, 30, False),
        (0, 12.5, 12.5, True),
        (30, 100, 30, False),
        (30, 10, 10, True),
        (30, -3, 0, True),
    ],
)
def test_run_budget(
    timeout: float, left: float | None, seconds: float | None, by_deadline: bool
) -> None:
    budget = run_budget(timeout_seconds=timeout, deadline_left_seconds=left)
    assert (budget.seconds, budget.by_deadline) == (seconds, by_deadline)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": [1, {"b": "x"}]}, None),
        ({"n": 2**64 - 1, "m": -(2**63)}, None),
        ({"a": [0, {"n": 2**64}]}, "metadata.a[1].n: integer 18446744073709551616 is beyond"),
        ({"f": float("nan")}, "metadata.f: nan is not a JSON number"),
        ({"f": float("inf")}, "metadata.f: inf is not a JSON number"),
        ({"f": 1e30}, "metadata.f: 1e+30 is beyond the 64-bit range"),
        ({"s": "\ud800"}, "metadata.s: a string that is not valid Unicode"),
        ({"\udfff": 1}, "metadata: key '\\udfff' is not a valid Unicode string"),
        ({"d": {"d": []}}, None),
        ({"d": {"d": {"d": {}}}}, "metadata.d.d.d: nested deeper than 3 levels"),
    ],
)
def test_json_problems_are_named_by_path(value: dict[str, object], problem: str | None) -> None:
    found = json_problem(value, path="metadata", max_depth=3)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem), found
