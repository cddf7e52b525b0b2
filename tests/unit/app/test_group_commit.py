"""GroupCommit: concurrent calls share requests; failures reach every caller of the batch."""

from __future__ import annotations

import asyncio

import pytest
from agentprod.broker.batching import GroupCommit


class Recorder:
    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[tuple[str, list[bytes]]] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def flush(self, key: str, items: list[bytes]) -> list[str]:
        self.batches.append((key, items))
        await self.release.wait()
        if self.fail:
            raise RuntimeError("broker said no")
        return [item.decode() for item in items]


async def test_calls_waiting_behind_the_in_flight_request_leave_together() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, size=len, max_in_flight=1)
    first = asyncio.create_task(commit.submit("t", b"a"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.create_task(commit.submit("t", f"{i}".encode())) for i in range(5)]
    await asyncio.sleep(0)
    assert recorder.batches == [("t", [b"a"])]
    recorder.release.set()
    assert await first == "a"
    assert [await task for task in rest] == ["0", "1", "2", "3", "4"]
    assert recorder.batches[1] == ("t", [b"0", b"1", b"2", b"3", b"4"])


async def test_keys_are_never_mixed_and_limits_split_batches() -> None:
    recorder = Recorder()
    recorder.release.set()
    commit = GroupCommit(recorder.flush, size=len, max_items=2, max_bytes=100, max_in_flight=4)
    results = await asyncio.gather(
        commit.submit("x", b"1"),
        commit.submit("y", b"2"),
        commit.submit("x", b"3"),
        commit.submit("x", b"4"),
    )
    assert results == ["1", "2", "3", "4"]
    assert sorted(recorder.batches) == [("x", [b"1", b"3"]), ("x", [b"4"]), ("y", [b"2"])]


async def test_a_failed_request_fails_every_caller_in_it() -> None:
    recorder = Recorder(fail=True)
    recorder.release.set()
    commit = GroupCommit(recorder.flush, size=len)
    outcomes = await asyncio.gather(
        commit.submit("t", b"a"), commit.submit("t", b"b"), return_exceptions=True
    )
    assert [str(outcome) for outcome in outcomes] == ["broker said no", "broker said no"]
    assert len(recorder.batches) == 1


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_items"):
        GroupCommit(Recorder().flush, size=len, max_items=0)
