"""Apache RocketMQ 5 for dev and tests: Maven-fetched jars, namesrv + local-mode proxy, admin calls.

Two JVMs: the NameServer and a proxy in LOCAL mode that embeds the broker. Everything
(confs, store, ``logs/rocketmqlogs``, ``*.out``, pidfiles) lives under ``home``; an instance
built on an existing ``home`` adopts the processes recorded in its pidfiles. Topics, groups and
the readiness check go through the operator's admin client
(:class:`agentprod_operator.rocketmq_admin.RocketMQAdmin`, milliseconds, vs. ~4 s per
``mqadmin`` JVM), wrapped in small synchronous calls since the harness is synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agentprod_operator.rocketmq import remoting
from agentprod_operator.rocketmq.admin import RocketMQAdmin

from harness.paths import repo_root
from harness.processes import (
    ServiceError,
    kill_process,
    log_tail,
    port_open,
    read_pidfile,
    remove_pidfile,
    start_background,
    stop_process,
    wait_for_log_line,
    wait_until,
    write_pidfile,
)

ROCKETMQ_VERSION = "5.3.3"
POM = repo_root() / "hack" / "rocketmq" / "pom.xml"
_JARS_MARKER = ".complete"

CLUSTER = "DefaultCluster"
BROKER_NAME = "broker-a"
HOST = "127.0.0.1"

_JVM_COMMON = (
    "-XX:+UseG1GC",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
)
_NAMESRV_HEAP = ("-Xms128m", "-Xmx256m")
_PROXY_HEAP = ("-Xms256m", "-Xmx768m", "-XX:MaxDirectMemorySize=512m")

_ADMIN_TIMEOUT = 5.0  # seconds per admin request
_T = TypeVar("_T")


# --------------------------------------------------------------------------- jars


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ServiceError("java not found (install a JDK 17 or set JAVA_HOME)")
    return java


def jars_dir(*, cache: Path) -> Path:
    """Where :func:`ensure_jars` puts the jars (``<cache>/rocketmq-<version>/lib``); no fetching."""
    return cache / f"rocketmq-{ROCKETMQ_VERSION}" / "lib"


def ensure_jars(*, cache: Path, pom: Path = POM) -> Path:
    """Return ``<cache>/rocketmq-<v>/lib``, fetching it with Maven when missing or half-done.

    Maven copies into a temp dir that gets a marker file and is then renamed into place, so a
    ``lib`` without the marker (interrupted or hand-made) is fetched again. A file lock keeps
    concurrent callers from downloading twice.
    """
    lib = jars_dir(cache=cache)
    base = lib.parent
    if (lib / _JARS_MARKER).is_file():
        return lib
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (lib / _JARS_MARKER).is_file():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError("mvn not found; it is needed once to fetch the RocketMQ jars")
        tmp = Path(tempfile.mkdtemp(prefix=".lib-", dir=base))
        try:
            argv = [
                mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
            ]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            wanted = tmp / f"rocketmq-proxy-{ROCKETMQ_VERSION}.jar"
            if done.returncode != 0 or not wanted.is_file():
                raise ServiceError(
                    f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                )
            jars = sorted(p.name for p in tmp.glob("*.jar"))
            (tmp / _JARS_MARKER).write_text("\n".join(jars) + "\n")
            if lib.exists():
                old = Path(tempfile.mkdtemp(prefix=".lib-old-", dir=base))
                lib.rename(old / "lib")
                tmp.rename(lib)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(lib)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return lib


# --------------------------------------------------------------------------- admin


def run_admin(
    *, namesrv_addr: str, what: str, call: Callable[[RocketMQAdmin], Awaitable[_T]]
) -> _T:
    """Run ``call`` with a fresh admin client on its own event loop; errors become ServiceError."""

    async def main() -> _T:
        async with RocketMQAdmin(name_servers=namesrv_addr, timeout=_ADMIN_TIMEOUT) as admin:
            return await call(admin)

    try:
        return asyncio.run(main())
    except remoting.RemotingError as exc:
        raise ServiceError(f"{what} failed: {exc}") from exc


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class RocketMQPorts:
    """TCP ports of one instance; the broker also listens on ``broker - 2`` and ``broker + 1``."""

    namesrv: int = 9876
    broker: int = 10911
    proxy_grpc: int = 8081
    proxy_remoting: int = 8080

    @classmethod
    def for_tests(cls, *, shift: int = 0) -> RocketMQPorts:
        """Ports clear of the dev defaults (19876, 20911, 18081, 18080), plus ``shift``.

        Instances running side by side need shifts at least 4 apart (broker port range).
        """
        return cls(
            namesrv=19876 + shift,
            broker=20911 + shift,
            proxy_grpc=18081 + shift,
            proxy_remoting=18080 + shift,
        )

    def all(self) -> tuple[int, ...]:
        """Every port the instance listens on."""
        b = self.broker
        return (self.namesrv, b, b - 2, b + 1, self.proxy_grpc, self.proxy_remoting)


class RocketMQ:
    """One NameServer + local-mode proxy (embedded broker) rooted at ``home``."""

    def __init__(
        self,
        *,
        home: Path,
        lib: Path,
        ports: RocketMQPorts | None = None,
        cache_refresh_seconds: int = 1,
        broker_extra: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home.resolve()
        self.lib = lib
        self.ports = ports or RocketMQPorts()
        self.cache_refresh_seconds = cache_refresh_seconds
        self.broker_extra = dict(broker_extra or {})
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # ---- addresses and files

    @property
    def namesrv_addr(self) -> str:
        """``127.0.0.1:<namesrv>`` for remoting clients and mqadmin ``-n``."""
        return f"{HOST}:{self.ports.namesrv}"

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<grpc>``: the proxy endpoint for the Python v5 client."""
        return f"{HOST}:{self.ports.proxy_grpc}"

    @property
    def broker_addr(self) -> str:
        """``127.0.0.1:<broker>``: the embedded broker's remoting (admin) address."""
        return f"{HOST}:{self.ports.broker}"

    def log_path(self, name: str) -> Path:
        """stdout/stderr file of ``namesrv`` or ``proxy``."""
        return self.home / f"{name}.out"

    def _pidfile(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def pids(self) -> dict[str, int | None]:
        """Live pids of ``namesrv`` and ``proxy`` per the pidfiles (None = not running)."""
        return {name: read_pidfile(path=self._pidfile(name)) for name in ("namesrv", "proxy")}

    @property
    def running(self) -> bool:
        """True if both JVMs are alive (not necessarily ready)."""
        return all(pid is not None for pid in self.pids().values())

    # ---- lifecycle

    def _jvm(self, *, heap: tuple[str, ...], logback: str, main: str) -> list[str]:
        # AGENTPROD_ROCKETMQ_JAVA_OPTS: extra JVM flags, last (they win), for trying settings
        extra = os.environ.get("AGENTPROD_ROCKETMQ_JAVA_OPTS", "").split()
        return [
            _java(), *heap, *_JVM_COMMON, *extra,
            f"-Duser.home={self.home}", f"-Drocketmq.home.dir={self.home}",
            f"-Drmq.logback.configurationFile={logback}",
            "-cp", f"{self.lib}/*", main,
        ]  # fmt: skip

    def _write_confs(self) -> tuple[Path, Path, Path]:
        conf = self.home / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        store = self.home / "store"
        broker = {
            "brokerClusterName": CLUSTER,
            "brokerName": BROKER_NAME,
            "brokerId": "0",
            "brokerIP1": HOST,
            "listenPort": str(self.ports.broker),
            "namesrvAddr": self.namesrv_addr,
            "storePathRootDir": str(store),
            "storePathCommitLog": str(store / "commitlog"),
            "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
            "mappedFileSizeConsumeQueue": "600000",
            "mappedFileSizeTimerLog": str(16 * 1024 * 1024),
            "messageIndexEnable": "false",
            "autoCreateTopicEnable": "false",
            "autoCreateSubscriptionGroup": "true",
            # Pop consumption (SimpleConsumer): keep each receive's checkpoint in memory until
            # its ack, instead of writing checkpoint + ack records to the revive topic per
            # message; acks of one request in one batch.
            "enablePopBufferMerge": "true",
            "enablePopBatchAck": "true",
            **self.broker_extra,
        }
        broker_conf = conf / "broker.conf"
        broker_conf.write_text("".join(f"{k}={v}\n" for k, v in broker.items()))
        refresh = self.cache_refresh_seconds
        proxy = {
            "rocketMQClusterName": CLUSTER,
            "namesrvAddr": self.namesrv_addr,
            "proxyMode": "LOCAL",
            "grpcServerPort": self.ports.proxy_grpc,
            "remotingListenPort": self.ports.proxy_remoting,
            "brokerConfigPath": str(broker_conf),
            "topicRouteServiceCacheRefreshSeconds": refresh,
            "topicConfigCacheRefreshSeconds": refresh,
            "subscriptionGroupConfigCacheRefreshSeconds": refresh,
        }
        proxy_conf = conf / "rmq-proxy.json"
        proxy_conf.write_text(json.dumps(proxy, indent=2) + "\n")
        namesrv_conf = conf / "namesrv.conf"
        namesrv_conf.write_text(f"listenPort={self.ports.namesrv}\n")
        return namesrv_conf, broker_conf, proxy_conf

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = start_background(argv=argv, log=self.log_path(name), cwd=self.home)
        self._procs[name] = proc
        write_pidfile(path=self._pidfile(name), pid=proc.pid)
        return proc

    def start(self, *, timeout: float = 240.0) -> None:
        """Start namesrv then proxy and wait until ready (see :meth:`ready`).

        No-op (beyond waiting for readiness) if both JVMs already run; a half-running
        instance is stopped first. On failure everything started is killed and
        :class:`ServiceError` carries the log tail.
        """
        if self.running:
            self.wait_ready(timeout=timeout)
            return
        self.stop()
        self.check_ports_free()
        namesrv_conf, broker_conf, proxy_conf = self._write_confs()
        try:
            namesrv_main = "org.apache.rocketmq.namesrv.NamesrvStartup"
            namesrv = self._spawn(
                "namesrv",
                [
                    *self._jvm(
                        heap=_NAMESRV_HEAP, logback="rmq.namesrv.logback.xml", main=namesrv_main
                    ),
                    *("-c", str(namesrv_conf)),
                ],
            )
            wait_for_log_line(
                path=self.log_path("namesrv"),
                text="The Name Server boot success",
                timeout=timeout,
                proc=namesrv,
            )
            proxy_main = "org.apache.rocketmq.proxy.ProxyStartup"
            self._spawn(
                "proxy",
                [
                    *self._jvm(heap=_PROXY_HEAP, logback="rmq.proxy.logback.xml", main=proxy_main),
                    *("-pc", str(proxy_conf), "-pm", "local", "-bc", str(broker_conf)),
                    *("-n", self.namesrv_addr),
                ],
            )
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.kill()
            raise

    def check_ports_free(self) -> None:
        """Raise :class:`ServiceError` if any of our ports is taken while we are not running."""
        if self.running:
            return
        busy = [p for p in self.ports.all() if port_open(host=HOST, port=p)]
        if busy:
            raise ServiceError(f"ports {busy} are already in use (not by RocketMQ in {self.home})")

    def broker_registered(self) -> bool:
        """True if the namesrv's cluster info lists our broker as master at our address."""
        try:
            info = self._admin("cluster info", lambda admin: admin.cluster_info())
        except ServiceError:
            return False
        broker = info.brokers.get(BROKER_NAME)
        return broker is not None and broker.master_addr == self.broker_addr

    def ready(self) -> bool:
        """True if the gRPC port accepts connections and the broker is registered."""
        return port_open(host=HOST, port=self.ports.proxy_grpc) and self.broker_registered()

    def wait_ready(self, *, timeout: float = 240.0) -> None:
        """Wait for :meth:`ready`; fail fast (with log tails) if either JVM exits."""
        proxy_log = self.log_path("proxy")

        def check() -> bool:
            for name, pid in self.pids().items():
                if pid is None:
                    log = self.log_path(name)
                    raise ServiceError(
                        f"{name} is not running; tail of {log}:\n{log_tail(path=log)}"
                    )
            return self.ready()

        wait_until(
            check=check,
            timeout=timeout,
            what=f"RocketMQ ready (gRPC {self.endpoint}, broker in {self.namesrv_addr})",
            proc=self._procs.get("proxy"),
            log=proxy_log,
        )

    def stop(self, *, timeout: float = 60.0) -> None:
        """SIGTERM the proxy (broker flushes and unregisters), then the namesrv; data is kept."""
        for name in ("proxy", "namesrv"):
            pid = read_pidfile(path=self._pidfile(name))
            if pid is not None:
                stop_process(pid=pid, timeout=timeout)
            self._forget(name)

    def kill(self) -> None:
        """SIGKILL both JVMs at once (a crash, for failure tests)."""
        for name in ("proxy", "namesrv"):
            pid = read_pidfile(path=self._pidfile(name))
            if pid is not None:
                kill_process(pid=pid)
            self._forget(name)

    def _forget(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        remove_pidfile(path=self._pidfile(name))

    def __enter__(self) -> RocketMQ:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- admin

    def mqadmin(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``mqadmin <args>`` (NAMESRV_ADDR preset, so ``-n`` is optional); return its output.

        Raises :class:`ServiceError` with the output on a non-zero exit. Note that mqadmin
        exits 0 on many failures and prints ``... command failed`` instead.
        """
        argv = [
            _java(), "-Xmx256m",
            f"-Duser.home={self.home}", f"-Drocketmq.home.dir={self.home}",
            "-Drmq.logback.configurationFile=rmq.tools.logback.xml",
            "-cp", f"{self.lib}/*", "org.apache.rocketmq.tools.command.MQAdminStartup", *args,
        ]  # fmt: skip
        env = {**os.environ, "NAMESRV_ADDR": self.namesrv_addr}
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise ServiceError(f"mqadmin {' '.join(args)} exited {done.returncode}:\n{output}")
        return output

    def _admin(self, what: str, call: Callable[[RocketMQAdmin], Awaitable[_T]]) -> _T:
        return run_admin(namesrv_addr=self.namesrv_addr, what=what, call=call)

    def topic_exists(self, name: str) -> bool:
        """True if the namesrv has a route for topic ``name``."""
        route = self._admin(f"route of topic {name}", lambda admin: admin.topic_route(name))
        return route is not None

    def create_topic(
        self, name: str, *, queues: int = 8, message_type: str = "NORMAL", timeout: float = 30.0
    ) -> None:
        """Create or update topic ``name`` on the broker, then wait until the namesrv routes it.

        ``message_type`` is NORMAL, FIFO, DELAY or TRANSACTION (the ``message.type`` attribute).
        """
        self._admin(
            f"create topic {name}",
            lambda admin: admin.create_or_update_topic(
                cluster=CLUSTER, topic=name, queues=queues, message_type=message_type
            ),
        )
        wait_until(
            check=lambda: self.topic_exists(name),
            timeout=timeout,
            what=f"topic {name} in {self.namesrv_addr}",
        )

    def create_group(self, name: str, *, max_retries: int = 16, orderly: bool = False) -> None:
        """Create or update consumer group ``name`` (``orderly=True`` for FIFO consumption)."""
        self._admin(
            f"create group {name}",
            lambda admin: admin.create_or_update_group(
                cluster=CLUSTER, group=name, max_retries=max_retries, orderly=orderly
            ),
        )
