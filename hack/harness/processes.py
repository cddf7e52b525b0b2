"""Background service processes: start detached with a log file, pidfiles, readiness waits, stop.

Processes run in their own session (``start_new_session=True``) so Ctrl-C in the starting shell
does not reach them and one ``killpg`` reaches everything they spawned. Pidfiles hold
``<pid> <start-time>`` so a recycled pid is not mistaken for the service (Linux ``/proc``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A service failed to start, stop or answer; the message carries the relevant log tail."""


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing): one holder at a time, across
    processes (two checkouts, or the lanes of `make system-deps`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_background(
    *,
    argv: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout+stderr truncated into ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from field 3 (state) on, or None if unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[19] if stat is not None and len(stat) > 19 else None


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")


def write_pidfile(*, path: Path, pid: int) -> None:
    """Atomically record ``pid`` (and its start time) in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{pid} {_start_time(pid) or '-'}\n")
    tmp.replace(path)


def read_pidfile(*, path: Path) -> int | None:
    """The live pid recorded in ``path``; None if missing, unparsable, dead or recycled."""
    try:
        fields = path.read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    recorded = fields[1] if len(fields) > 1 else "-"
    if not pid_alive(pid):
        return None
    current = _start_time(pid)
    if recorded != "-" and current is not None and current != recorded:
        return None
    return pid


def remove_pidfile(*, path: Path) -> None:
    """Delete ``path`` if present."""
    path.unlink(missing_ok=True)


def _signal(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to pid's process group if pid leads one, else to pid alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop_process(*, pid: int, timeout: float = 30.0) -> None:
    """SIGTERM ``pid`` (its group), wait up to ``timeout`` s, then SIGKILL the group."""
    if not pid_alive(pid):
        return
    _signal(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout=timeout):
        return
    kill_process(pid=pid)


def kill_process(*, pid: int, timeout: float = 10.0) -> None:
    """SIGKILL ``pid``'s process group and wait until it is gone."""
    _signal(pid, signal.SIGKILL)
    if not _wait_gone(pid, timeout=timeout):
        raise ServiceError(f"pid {pid} survived SIGKILL for {timeout:.0f}s")


def log_tail(*, path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of ``path`` (empty if unreadable)."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def port_open(*, host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    *,
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval: float = 0.25,
) -> None:
    """Poll ``check`` until true; fail on timeout or as soon as ``proc`` exits (with log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            tail = log_tail(path=log) if log is not None else ""
            raise ServiceError(
                f"process exited with {proc.returncode} while waiting for {what}"
                + (f"; tail of {log}:\n{tail}" if log is not None else "")
            )
        if time.monotonic() >= deadline:
            tail = log_tail(path=log) if log is not None else ""
            raise ServiceError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f"; tail of {log}:\n{tail}" if log is not None else "")
            )
        time.sleep(interval)


def wait_for_log_line(
    *,
    path: Path,
    text: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until ``text`` appears in the file ``path``; fail fast if ``proc`` exits."""
    needle = text.encode()

    def found() -> bool:
        try:
            return needle in path.read_bytes()
        except OSError:
            return False

    wait_until(check=found, timeout=timeout, what=f"{text!r} in {path}", proc=proc, log=path)
