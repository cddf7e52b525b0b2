"""Apache RocketMQ 5 for dev and tests: Maven-fetched jars, namesrv + local-mode proxy, admin calls.

Two JVMs: the NameServer and a proxy in LOCAL mode that embeds the broker. Everything
(confs, store, ``logs/rocketmqlogs``, ``*.out``, pidfiles) lives under ``home``; an instance
built on an existing ``home`` adopts the processes recorded in its pidfiles. Topics and groups
are created with raw remoting requests (milliseconds, vs. ~4 s per ``mqadmin`` JVM).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
_MQ_VERSION_ORDINAL = 479  # MQVersion ordinal of 5.3.3, sent in remoting headers

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

# Remoting request codes (RequestCode.java) and response codes (ResponseCode.java).
UPDATE_AND_CREATE_TOPIC = 17
GET_ROUTEINFO_BY_TOPIC = 105
GET_BROKER_CLUSTER_INFO = 106
UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200
SUCCESS = 0


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


# --------------------------------------------------------------------------- remoting


@dataclass(frozen=True)
class RemotingResponse:
    """A decoded remoting reply: response code, remark, header extFields and raw body."""

    code: int
    remark: str
    ext_fields: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


_opaque = itertools.count(1)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("remoting peer closed the connection")
        buf += chunk
    return bytes(buf)


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


def remoting_request(
    *,
    addr: str,
    code: int,
    ext_fields: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 5.0,
) -> RemotingResponse:
    """Send one JSON-serialized remoting request to ``host:port`` and return the reply.

    Frame: int32 total length, int32 (serType<<24 | headerLen), JSON header, body.
    Raises OSError/ConnectionError when the server is unreachable.
    """
    opaque = next(_opaque)
    header = json.dumps(
        {
            "code": code,
            "language": "JAVA",
            "version": _MQ_VERSION_ORDINAL,
            "opaque": opaque,
            "flag": 0,
            "extFields": dict(ext_fields or {}),
        }
    ).encode()
    frame = struct.pack(">ii", 4 + len(header) + len(body), len(header)) + header + body
    with socket.create_connection(_split_addr(addr), timeout=timeout) as sock:
        sock.sendall(frame)
        (total,) = struct.unpack(">i", _recv_exactly(sock, 4))
        payload = _recv_exactly(sock, total)
    (mark,) = struct.unpack(">i", payload[:4])
    ser_type, header_len = (mark >> 24) & 0xFF, mark & 0xFFFFFF
    if ser_type != 0:
        raise ServiceError(f"remoting reply uses serialization type {ser_type}, expected JSON")
    reply = json.loads(payload[4 : 4 + header_len])
    return RemotingResponse(
        code=int(reply.get("code", -1)),
        remark=str(reply.get("remark") or ""),
        ext_fields={str(k): str(v) for k, v in (reply.get("extFields") or {}).items()},
        body=payload[4 + header_len :],
    )


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
        return [
            _java(), *heap, *_JVM_COMMON,
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
        """True if the namesrv's cluster info (code 106) lists our broker and its address."""
        try:
            reply = remoting_request(addr=self.namesrv_addr, code=GET_BROKER_CLUSTER_INFO)
        except OSError:
            return False
        return (
            reply.code == SUCCESS
            and BROKER_NAME.encode() in reply.body
            and self.broker_addr.encode() in reply.body
        )

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

    def _admin(
        self,
        *,
        code: int,
        what: str,
        ext_fields: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> RemotingResponse:
        reply = remoting_request(addr=self.broker_addr, code=code, ext_fields=ext_fields, body=body)
        if reply.code != SUCCESS:
            raise ServiceError(f"{what} failed: code {reply.code} {reply.remark}")
        return reply

    def topic_exists(self, name: str) -> bool:
        """True if the namesrv has a route for topic ``name`` (code 105)."""
        reply = remoting_request(
            addr=self.namesrv_addr, code=GET_ROUTEINFO_BY_TOPIC, ext_fields={"topic": name}
        )
        return reply.code == SUCCESS

    def create_topic(
        self, name: str, *, queues: int = 8, message_type: str = "NORMAL", timeout: float = 30.0
    ) -> None:
        """Create or update topic ``name`` on the broker, then wait until the namesrv routes it.

        ``message_type`` is NORMAL, FIFO, DELAY or TRANSACTION (the ``message.type`` attribute).
        """
        self._admin(
            code=UPDATE_AND_CREATE_TOPIC,
            what=f"create topic {name}",
            ext_fields={
                "topic": name,
                "defaultTopic": "TBW102",
                "readQueueNums": str(queues),
                "writeQueueNums": str(queues),
                "perm": "6",
                "topicFilterType": "SINGLE_TAG",
                "topicSysFlag": "0",
                "order": "false",
                "attributes": f"+message.type={message_type}",
            },
        )
        wait_until(
            check=lambda: self.topic_exists(name),
            timeout=timeout,
            what=f"topic {name} in {self.namesrv_addr}",
        )

    def create_group(self, name: str, *, max_retries: int = 16, orderly: bool = False) -> None:
        """Create or update consumer group ``name`` (``orderly=True`` for FIFO consumption)."""
        config = {
            "groupName": name,
            "consumeEnable": True,
            "consumeFromMinEnable": True,
            "consumeBroadcastEnable": True,
            "consumeMessageOrderly": orderly,
            "retryQueueNums": 1,
            "retryMaxTimes": max_retries,
            "brokerId": 0,
            "whichBrokerWhenConsumeSlowly": 1,
            "notifyConsumerIdsChangedEnable": True,
            "attributes": {},
        }
        self._admin(
            code=UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
            what=f"create group {name}",
            body=json.dumps(config).encode(),
        )
