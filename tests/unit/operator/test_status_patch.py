"""The scaler's status patch (pure): only what changed, and nothing stale left behind."""

from __future__ import annotations

from agentprod_operator.scaling.daemon import status_merge_patch

CAPPED = {"limited": True, "cap": 1, "windowSeconds": 60, "okPerMinute": 12.0}


def test_unchanged_fields_are_not_patched() -> None:
    status = {"lag": 3, "provider": CAPPED}
    assert status_merge_patch(status, {"lag": 3, "provider": dict(CAPPED)}) == {}


def test_a_block_that_went_away_is_removed() -> None:
    # The cap switched off: no signals are read, so the old block must not keep saying "limited".
    assert status_merge_patch({"lag": 3, "provider": CAPPED}, {"lag": 3, "provider": None}) == {
        "provider": None
    }


def test_a_missing_block_is_not_patched_to_null() -> None:
    assert status_merge_patch({"lag": 3}, {"lag": 3, "provider": None}) == {}


def test_keys_a_block_lost_are_nulled() -> None:
    lifted = {"limited": False, "windowSeconds": 60, "okPerMinute": 30.0}
    assert status_merge_patch({"provider": CAPPED}, {"provider": lifted}) == {
        "provider": {"cap": None, **lifted}
    }
