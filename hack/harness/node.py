"""One real Kubernetes node on this machine: containerd + runc + a kubelet, kube-proxy, CoreDNS.

Built for a VM without Docker, registry or dummy links (see ``../shared/briefs/k8s-node.md``):

- a Linux bridge (``agentprod0``, 10.88.0.1/16) carries the node IP and is the CNI ``bridge``
  plugin's gateway; pods get ``host-local`` addresses with routes to the pod network and the
  Service CIDR only, no default route and no masquerade, so nothing leaves the machine.
- containerd (Debian's 1.6) with its CRI plugin, state and socket under the node's home;
  ``restrict_oom_score_adj`` because the VM lacks CAP_SYS_RESOURCE.
- kubelet bound to the bridge address (anonymous + AlwaysAllow there only), cgroupfs driver,
  no iptables chains, no image GC (the images are imported, never pulled).
- kube-proxy in nftables mode (its own ``kube-proxy`` tables, deleted at teardown) for the
  ClusterIP Services; NodePorts only on the bridge address.
- CoreDNS on 10.88.0.1:53 serving ``cluster.local`` from the API: the kubelet's cluster DNS.

Everything listens on 127.0.0.1 or the bridge address. :meth:`Node.stop` removes what
:meth:`Node.start` made: pods, shims, mounts, network namespaces, veths, the bridge, nftables
tables, cgroups, and restores ``net.ipv4.ip_forward``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import apt
from harness.apps import free_port
from harness.kubernetes import SERVICE_CIDR, ControlPlane
from harness.processes import (
    ServiceError,
    kill_process,
    log_tail,
    pid_alive,
    read_pidfile,
    remove_pidfile,
    start_background,
    stop_process,
    wait_until,
    write_pidfile,
)

BRIDGE = "agentprod0"
NODE_IP = "10.88.0.1"
POD_CIDR = "10.88.0.0/16"
NODE_NAME = "agentprod-node"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN = Path("/usr/lib/cni")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The kubelet's and containerd's own processes, in start order (stopped in reverse).
PROCESSES = ("containerd", "kubelet", "kube-proxy", "coredns")
# The home of the node that made the bridge: a later node tells a live one from a dead one's
# leftovers by it (on tmpfs, gone with the bridge at reboot).
BRIDGE_OWNER = Path("/run/agentprod-node.home")


# Debian packages of the node and of the image builds (command each provides).
PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "containernetworking-plugins": str(CNI_BIN / "bridge"),
    "nftables": "nft",
    "buildah": "buildah",
    "debootstrap": "debootstrap",
}


def ensure_packages() -> list[str]:
    """Install the Debian packages the node needs when missing (root); returns what was added."""
    missing = [
        package
        for package, tool in PACKAGES.items()
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))
    ]
    if not missing:
        return []
    apt.install(missing)
    return missing


def bridge_claim(*, bridge_exists: bool, owner_home: str | None, owner_alive: bool) -> str:
    """What a starting node does about the bridge: "create" it, "wait" for the node that holds
    it, or "take over" the leftovers of a node whose processes are all gone (a killed session).
    A bridge nobody recorded is never touched."""
    if not bridge_exists:
        return "create"
    if owner_home is None or owner_alive:
        return "wait"
    return "take over"


def _say(message: str) -> None:
    print(f"node: {message}", file=sys.stderr, flush=True)


def _bridge_owner() -> Path | None:
    try:
        recorded = BRIDGE_OWNER.read_text().strip()
    except OSError:
        return None
    return Path(recorded) if recorded else None


def _run(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise ServiceError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done


class Node:
    """The node's processes rooted at ``home``, serving the control plane ``plane``."""

    def __init__(self, *, home: Path, plane: ControlPlane) -> None:
        self.home = home.resolve()
        self.plane = plane
        self.bin_dir = plane.bin_dir
        self.socket = self.home / "containerd" / "containerd.sock"
        self.cni_conf = self.home / "cni" / "net.d"
        self.kubelet_root = self.home / "kubelet"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # ---- lifecycle

    def start(self, *, images: list[Path], timeout: float = 120.0) -> dict[str, float]:
        """Bridge, containerd (+ images), kubelet, kube-proxy, CoreDNS; returns step timings."""
        if self.running:
            return {}
        if not (self.home / "ip_forward.orig").exists():
            self.bridge_up()
        missing = [b for b in ("containerd", "runc", "ctr", "nft") if shutil.which(b) is None]
        if missing or not (CNI_BIN / "bridge").exists():
            raise ServiceError(
                f"missing {missing or 'CNI plugins'}: `make system-deps` installs containerd, "
                "runc, containernetworking-plugins and nftables (Debian)"
            )
        timings: dict[str, float] = {}
        self.home.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            self._start_containerd()
            timings["containerd"] = time.monotonic() - t0
            t1 = time.monotonic()
            for archive in images:
                self.ctr("images", "import", str(archive), timeout=300)
            timings["image import"] = time.monotonic() - t1
            t1 = time.monotonic()
            self._start_kubelet()
            self._start_kube_proxy()
            self._start_coredns()
            self.wait_ready(timeout=timeout)
            timings["kubelet → node Ready"] = time.monotonic() - t1
        except BaseException:
            self.stop()
            raise
        return timings

    @property
    def running(self) -> bool:
        return read_pidfile(path=self._pidfile("kubelet")) is not None

    def wait_ready(self, *, timeout: float) -> None:
        def ready() -> bool:
            done = self.plane.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if done.returncode != 0:
                return False
            node = json.loads(done.stdout)
            conditions = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
            taints = node["spec"].get("taints") or []
            return conditions.get("Ready") == "True" and not taints

        wait_until(
            check=ready, timeout=timeout, what=f"node {NODE_NAME} Ready", log=self._log("kubelet")
        )
        wait_until(
            check=lambda: self._dns_ready(),
            timeout=timeout,
            what="CoreDNS ready",
            log=self._log("coredns"),
        )

    def stop(self) -> None:
        """Stop every process and remove what start made; safe to call more than once."""
        for name in ("coredns", "kube-proxy", "kubelet"):
            self._stop(name)
        with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
            if read_pidfile(path=self._pidfile("containerd")) is not None:
                self._remove_containers()
        self._stop("containerd")
        self._kill_shims()
        self._unmount_all()
        # The bridge, netns, veths, nftables and cgroups only if this node made the bridge:
        # a start that found another node's must leave that node alone.
        if (self.home / "ip_forward.orig").exists():
            self._network_down()
            self._remove_cgroups()
        remove_pidfile(path=self._pidfile("starter"))

    @property
    def alive(self) -> bool:
        """Whether this node still runs: while its starter is recorded (a test session), as long
        as the starter lives; once detached (`make cluster-up`), while any node process does."""
        if self._pidfile("starter").exists():
            return read_pidfile(path=self._pidfile("starter")) is not None
        return any(read_pidfile(path=self._pidfile(name)) is not None for name in PROCESSES)

    def detach(self) -> None:
        """Let the node outlive the process that started it (`make cluster-up`)."""
        remove_pidfile(path=self._pidfile("starter"))

    def remove_leftovers(self) -> None:
        """Take down what a dead node left: shims, mounts, network (even if its home is gone)."""
        self.stop()
        self._network_down()
        self._remove_cgroups()

    # ---- helpers for tests

    def ctr(self, *args: str, timeout: float = 60) -> str:
        """Run ``ctr -n k8s.io`` against this node's containerd."""
        return _run(
            "ctr", f"--address={self.socket}", "-n", "k8s.io", *args, timeout=timeout
        ).stdout

    def usage(self) -> dict[str, tuple[float, float]]:
        """RSS (MiB) and CPU seconds of each node process and of all pod containers."""
        found: dict[str, tuple[float, float]] = {}
        pids: dict[str, list[int]] = {}
        for name in PROCESSES:
            pid = read_pidfile(path=self._pidfile(name))
            if pid is not None:
                pids[name] = [pid]
        shims = _pids_of("containerd-shim-runc-v2")
        pids["shims"] = shims
        pids["pods"] = [child for shim in shims for child in _descendants(shim)]
        for name, group in pids.items():
            rss = cpu = 0.0
            for pid in group:
                stat = _stat(pid)
                if stat is not None:
                    rss += stat[0]
                    cpu += stat[1]
            found[name] = (rss, cpu)
        return found

    # ---- internals: processes

    def _pidfile(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        process = start_background(argv=argv, log=self._log(name))
        self._procs[name] = process
        write_pidfile(path=self._pidfile(name), pid=process.pid)
        return process

    def _stop(self, name: str) -> None:
        pid = read_pidfile(path=self._pidfile(name))
        if pid is not None:
            try:
                stop_process(pid=pid, timeout=20)
            except ServiceError:
                kill_process(pid=pid)
        remove_pidfile(path=self._pidfile(name))
        process = self._procs.pop(name, None)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    # ---- internals: network

    def bridge_up(self, *, wait: float | None = None) -> None:
        """Create the bridge with the node address (before kube-apiserver binds to it).

        One node per machine: while another one's bridge exists (a test session elsewhere,
        `make cluster-up`), wait up to ``wait`` seconds ($AGENTPROD_NODE_WAIT_SECONDS, 600) for
        it to go, then fail without touching it. A bridge whose node is dead (the session that
        started it was killed, see :attr:`alive`) is cleaned up, its processes stopped, and taken.
        """
        if wait is None:
            wait = float(os.environ.get("AGENTPROD_NODE_WAIT_SECONDS", "600"))
        deadline = time.monotonic() + wait
        announced = False
        while True:
            recorded = _bridge_owner()
            holder = None if recorded is None else Node(home=recorded, plane=self.plane)
            claim = bridge_claim(
                bridge_exists=_run("ip", "link", "show", BRIDGE, check=False).returncode == 0,
                owner_home=None if holder is None else str(holder.home),
                owner_alive=holder is not None and holder.alive,
            )
            if claim == "create":
                break
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"bridge {BRIDGE} exists: another node runs here (`make cluster-down` "
                    "stops the one of `make cluster-up`)"
                )
            if claim == "take over" and holder is not None:
                _say(f"bridge {BRIDGE} left by a dead node ({holder.home}): removing it")
                holder.remove_leftovers()
                continue
            if not announced:
                _say(f"bridge {BRIDGE} in use by another node: waiting up to {wait:.0f}s")
                announced = True
            time.sleep(2)
        self.home.mkdir(parents=True, exist_ok=True)
        forward = IP_FORWARD.read_text()
        _run("ip", "link", "add", BRIDGE, "type", "bridge")  # fails if another node won a race
        # From here on the bridge is ours: the marker lets stop() take it down, the owner
        # record and the starter's pid let a later node see whether this one still runs.
        (self.home / "ip_forward.orig").write_text(forward)
        write_pidfile(path=self._pidfile("starter"), pid=os.getpid())
        BRIDGE_OWNER.write_text(str(self.home))
        _run("ip", "addr", "add", f"{NODE_IP}/16", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        self.cni_conf.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": "agentprod",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                        # The pod network and the Services, nothing else: no default route.
                        "routes": [{"dst": POD_CIDR}, {"dst": SERVICE_CIDR, "gw": NODE_IP}],
                        "dataDir": str(self.home / "cni" / "ipam"),
                    },
                }
            ],
        }
        (self.cni_conf / "10-agentprod.conflist").write_text(json.dumps(conflist, indent=2))

    def _network_down(self) -> None:
        for family in ("ip", "ip6"):
            _run("nft", "delete", "table", family, "kube-proxy", check=False)
        for netns in Path("/run/netns").glob("cni-*"):
            _run("ip", "netns", "delete", netns.name, check=False)
        links = _run("ip", "-o", "link", "show", "master", BRIDGE, check=False).stdout
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            _run("ip", "link", "delete", name, check=False)
        _run("ip", "link", "delete", BRIDGE, check=False)
        if _bridge_owner() == self.home:
            BRIDGE_OWNER.unlink(missing_ok=True)
        orig = self.home / "ip_forward.orig"
        if orig.exists():
            with contextlib.suppress(OSError):
                IP_FORWARD.write_text(orig.read_text())
            orig.unlink()

    # ---- internals: containerd

    def _start_containerd(self) -> None:
        from harness.images import PAUSE_IMAGE

        root = self.home / "containerd"
        root.mkdir(parents=True, exist_ok=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        disabled = ", ".join(
            f'"io.containerd.snapshotter.v1.{name}"'
            for name in ("aufs", "btrfs", "devmapper", "zfs")
        )
        config = f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = [{disabled}]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{self.cni_conf}"
"""
        path = root / "config.toml"
        path.write_text(config)
        process = self._spawn("containerd", ["containerd", f"--config={path}"])
        wait_until(
            check=lambda: (
                self.socket.exists()
                and _run("ctr", f"--address={self.socket}", "version", check=False).returncode == 0
            ),
            timeout=30,
            what="containerd",
            proc=process,
            log=self._log("containerd"),
        )

    def _remove_containers(self) -> None:
        for task in self.ctr("tasks", "list", "-q").split():
            _run("ctr", f"--address={self.socket}", "-n", "k8s.io", "tasks", "kill", "-s",
                 "SIGKILL", task, check=False)  # fmt: skip
        deadline = time.monotonic() + 10
        while self.ctr("tasks", "list", "-q").split() and time.monotonic() < deadline:
            time.sleep(0.3)
        for task in self.ctr("tasks", "list", "-q").split():
            _run("ctr", f"--address={self.socket}", "-n", "k8s.io", "tasks", "rm", "-f", task,
                 check=False)  # fmt: skip
        for container in self.ctr("containers", "list", "-q").split():
            _run("ctr", f"--address={self.socket}", "-n", "k8s.io", "containers", "rm",
                 container, check=False)  # fmt: skip

    def _kill_shims(self) -> None:
        """Shims outlive containerd: end the ones whose state lives under our home."""
        marker = str(self.home)
        for pid in _pids_of("containerd-shim-runc-v2"):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline or str(self.socket) in cmdline:
                for child in _descendants(pid):
                    with contextlib.suppress(ServiceError):
                        kill_process(pid=child, timeout=5)
                with contextlib.suppress(ServiceError):
                    kill_process(pid=pid, timeout=5)

    def _unmount_all(self) -> None:
        marker = str(self.home)
        for _ in range(3):
            mounts = [
                line.split()[1].replace("\\040", " ")
                for line in Path("/proc/self/mounts").read_text().splitlines()
                if marker in line.split()[1] or "/run/containerd" in line.split()[1]
            ]
            mine = [m for m in mounts if m.startswith(marker)]
            if not mine:
                return
            for mount in sorted(mine, key=len, reverse=True):
                _run("umount", "-l", mount, check=False)

    def _remove_cgroups(self) -> None:
        for controller in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
            for top in ("kubepods", "k8s.io"):
                base = controller / top
                if not base.is_dir():
                    continue
                for folder in sorted(base.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if folder.is_dir():
                        with contextlib.suppress(OSError):
                            folder.rmdir()
                with contextlib.suppress(OSError):
                    base.rmdir()

    # ---- internals: kubelet, kube-proxy, CoreDNS

    def _start_kubelet(self) -> None:
        self.kubelet_root.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {
                "anonymous": {"enabled": True},
                "webhook": {"enabled": False},
                "x509": {},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "makeIPTablesUtilChains": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "maxPods": 50,
            "clusterDNS": [NODE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "20s",
            "staticPodPath": "",
        }
        path = self.home / "kubelet.yaml"
        path.write_text(json.dumps(config, indent=2))
        self._spawn(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                f"--config={path}",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.kubelet_root / 'pki'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=0",
            ],
        )

    def _start_kube_proxy(self) -> None:
        self._spawn(
            "kube-proxy",
            [
                str(self.bin_dir / "kube-proxy"),
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                "--proxy-mode=nftables",
                f"--cluster-cidr={POD_CIDR}",
                f"--bind-address={NODE_IP}",
                f"--healthz-bind-address=127.0.0.1:{free_port()}",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--nodeport-addresses={NODE_IP}/32",
                "--conntrack-max-per-core=0",
                "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0",
                "--v=0",
            ],
        )

    def _start_coredns(self) -> None:
        self._dns_health = free_port()
        corefile = self.home / "Corefile"
        corefile.write_text(
            f""".:53 {{
    bind {NODE_IP}
    ready 127.0.0.1:{self._dns_health}
    errors
    cache 5
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {self.plane.kubeconfig} agentprod-local
        pods insecure
        ttl 5
    }}
}}
"""
        )
        (self.home / "coredns.ready").write_text(str(self._dns_health))
        self._spawn("coredns", [str(self.bin_dir / "coredns"), "-conf", str(corefile)])

    def _dns_ready(self) -> bool:
        import urllib.request

        try:
            port = int((self.home / "coredns.ready").read_text())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, ValueError):
            return False

    def logs(self, name: str, lines: int = 40) -> str:
        return log_tail(path=self._log(name), lines=lines)


def _pids_of(command: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == command[:15]:
                found.append(int(proc.name))
        except OSError:
            continue
    return [pid for pid in found if pid_alive(pid)]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "stat").read_text()
        except OSError:
            continue
        parent = int(raw[raw.rfind(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(proc.name))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _stat(pid: int) -> tuple[float, float] | None:
    """(RSS MiB, CPU seconds incl. reaped children) of ``pid``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    ticks = 100.0
    cpu = sum(int(x) for x in fields[11:15]) / ticks
    rss_pages = int(fields[21])
    return rss_pages * 4096 / 2**20, cpu
