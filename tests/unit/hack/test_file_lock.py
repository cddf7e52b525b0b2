"""`harness.processes.file_lock`: one holder at a time (the lanes of `make system-deps`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.processes import file_lock


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "apt.lock"
    order: list[str] = []
    holding = threading.Event()

    def second() -> None:
        holding.wait()
        with file_lock(lock):
            order.append("second in")

    waiter = threading.Thread(target=second)
    waiter.start()
    with file_lock(lock):
        holding.set()
        time.sleep(0.2)
        order.append("first out")
    waiter.join(timeout=5)
    assert order == ["first out", "second in"]
