"""Idle memory of a real `agentprod api` and `agentprod worker`, fresh and after 300 echo tasks.

Both run on the real stack (`bench.stack.real_stack`). Printed per process: RSS and PSS in MB
and the thread count, then the threads by name. Run it with the interpreter of the install you
want measured: a runtime-only venv (`pip install .`, as the image) reads ~3 MB lower than the dev
venv, where httpx also imports rich, pygments and click.

    python -m bench.idle_memory
"""

from __future__ import annotations

import collections
import os
import time

import httpx
import psutil

from bench.stack import real_stack

TASKS = 300


def _memory(pid: int) -> str:
    process = psutil.Process(pid)
    info = process.memory_full_info()
    return (
        f"RSS {info.rss / 2**20:.1f} MB, PSS {info.pss / 2**20:.1f} MB, "
        f"{process.num_threads()} threads"
    )


def _threads(pid: int) -> dict[str, int]:
    names: collections.Counter[str] = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as comm:
            names[comm.read().strip().rstrip("0123456789_-")] += 1
    return dict(names)


def main() -> None:
    with real_stack() as stack:
        topic, group = stack.pipeline()
        env = stack.env(topic, group)
        api = stack.launch("api", env)
        worker = stack.launch("worker", env | {"AGENT": "echo"})
        pids = {"api": api.process.pid, "worker": worker.process.pid}
        for name, pid in pids.items():
            print(f"{name} fresh: {_memory(pid)}")
        with httpx.Client(base_url=api.url, timeout=10) as client:
            body = {"user_id": "bench", "content": "x", "agent": "echo"}
            ids = [client.post("/tasks", json=body).json()["task_id"] for _ in range(TASKS)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if client.get(f"/tasks/{ids[-1]}").json()["status"] == "done":
                    break
                time.sleep(0.1)
        time.sleep(3)
        for name, pid in pids.items():
            print(f"{name} after {TASKS} tasks: {_memory(pid)}; threads {_threads(pid)}")
        stack.stop_processes()


if __name__ == "__main__":
    main()
