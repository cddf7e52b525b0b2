"""CPU of an idle RocketMQ namesrv and proxy (embedded broker), per thread name.

Starts RocketMQ as the harness does (`hack/harness/rocketmq.py`), waits 20 s, then reads every
thread's CPU time from `/proc/<pid>/task/*/stat` over 30 s. Extra ``key=value`` arguments are
added to `broker.conf` (e.g. ``timerWheelEnable=false``).

    python -m bench.broker_idle [key=value ...]
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import paths
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars

TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 20.0
WINDOW_SECONDS = 30.0


def _threads(pid: int) -> dict[str, tuple[str, float]]:
    """Per thread id: its name and CPU seconds so far."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")].rstrip("0123456789-_")
        fields = raw[raw.rindex(")") + 2 :].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    extra = dict(item.split("=", 1) for item in args if "=" in item)
    lib = ensure_jars(cache=paths.cache_dir())
    with tempfile.TemporaryDirectory(prefix="agentprod-broker-idle-") as tmp:
        ports = RocketMQPorts.for_tests(shift=700)
        mq = RocketMQ(home=Path(tmp), lib=lib, ports=ports, broker_extra=extra)
        mq.start()
        try:
            pids = {name: pid for name, pid in mq.pids().items() if pid}
            time.sleep(SETTLE_SECONDS)
            before = {name: _threads(pid) for name, pid in pids.items()}
            started = time.monotonic()
            time.sleep(WINDOW_SECONDS)
            elapsed = time.monotonic() - started
            for name, pid in pids.items():
                after = _threads(pid)
                by_name: dict[str, float] = collections.defaultdict(float)
                for tid, (thread, cpu) in after.items():
                    by_name[thread] += cpu - before[name].get(tid, (thread, 0.0))[1]
                total = 100 * sum(by_name.values()) / elapsed
                print(f"{name}: {total:.1f} % of a core idle, {len(after)} threads")
                for thread, cpu in sorted(by_name.items(), key=lambda kv: -kv[1])[:12]:
                    if cpu > 0:
                        print(f"   {thread:<28} {100 * cpu / elapsed:5.2f} %")
        finally:
            mq.stop()


if __name__ == "__main__":
    main()
