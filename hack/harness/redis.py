"""A throwaway redis-server (no persistence) for dev and tests, plus installing it if missing."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from harness import apt
from harness.processes import (
    ServiceError,
    kill_process,
    port_open,
    read_pidfile,
    remove_pidfile,
    start_background,
    stop_process,
    wait_until,
    write_pidfile,
)

HOST = "127.0.0.1"


def ensure_redis_server() -> str:
    """Path of ``redis-server``; installs the Debian package when missing and running as root."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    apt.install(["redis-server"], recommends=True)
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).is_file():
        raise ServiceError("redis-server still missing after apt-get install")
    return found


def ping(*, host: str = HOST, port: int, timeout: float = 1.0) -> bool:
    """True if ``PING`` over a raw socket gets ``+PONG``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` with its dir, log and pidfile under ``home``."""

    def __init__(self, *, home: Path, port: int = 6379, persistent: bool = False) -> None:
        self.home = home.resolve()
        self.port = port
        #: Append-only file with an fsync per write, as agentprod needs in production
        #: (docs/reliability.md): a restart keeps every record. Off: a restart loses them all.
        self.persistent = persistent
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        """stdout/stderr of the server."""
        return self.home / "redis.out"

    @property
    def _pidfile(self) -> Path:
        return self.home / "redis.pid"

    @property
    def pid(self) -> int | None:
        """Live pid per the pidfile, or None."""
        return read_pidfile(path=self._pidfile)

    @property
    def running(self) -> bool:
        """True if the recorded process is alive."""
        return self.pid is not None

    def check_port_free(self) -> None:
        """Raise :class:`ServiceError` if our port is taken while we are not running."""
        if not self.running and port_open(host=HOST, port=self.port):
            raise ServiceError(f"port {self.port} is already in use (not by Redis in {self.home})")

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the server (no-op if already running) and wait until it answers PING."""
        if self.running:
            wait_until(check=lambda: ping(port=self.port), timeout=timeout, what=self.url)
            return
        remove_pidfile(path=self._pidfile)
        self.check_port_free()
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            ensure_redis_server(),
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "always",
            "--dir", str(self.home),
            "--daemonize", "no",
        ]  # fmt: skip
        self._proc = start_background(argv=argv, log=self.log_path, cwd=self.home)
        write_pidfile(path=self._pidfile, pid=self._proc.pid)
        try:
            wait_until(
                check=lambda: ping(port=self.port),
                timeout=timeout,
                what=f"PONG from {self.url}",
                proc=self._proc,
                log=self.log_path,
            )
        except BaseException:
            self.kill()
            raise

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM the server (SIGKILL after ``timeout``); only a persistent one keeps its data."""
        pid = self.pid
        if pid is not None:
            stop_process(pid=pid, timeout=timeout)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server (for failure tests)."""
        pid = self.pid
        if pid is not None:
            kill_process(pid=pid)
        self._forget()

    def _forget(self) -> None:
        if self._proc is not None:
            # The process was signalled: collect its status so the Popen is not left "running".
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        remove_pidfile(path=self._pidfile)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
