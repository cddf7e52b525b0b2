"""The local cluster of `make cluster-up`: control plane + one real node + the product's images.

``LocalCluster(home).start()`` builds or reuses the binaries (Go module proxy) and the images
(buildah, see :mod:`harness.images`), starts etcd, kube-apiserver (on the bridge address),
kube-controller-manager, kube-scheduler, then containerd, the kubelet, kube-proxy and CoreDNS
(:mod:`harness.node`), imports the images and installs the CRD. ``stop()`` deletes the
workloads, then tears the node and the control plane down, leaving nothing behind.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

from harness import paths
from harness.images import (
    APP_IMAGE,
    OPERATOR_IMAGE,
    REDIS_IMAGE,
    ROCKETMQ_IMAGE,
    ensure_all,
)
from harness.kubernetes import ControlPlane, ensure_binaries
from harness.node import NODE_IP, Node
from harness.processes import ServiceError, file_lock

CRD_FILE = paths.repo_root() / "crds" / "agentpipelines.agentprod.io.yaml"

__all__ = [
    "APP_IMAGE",
    "OPERATOR_IMAGE",
    "REDIS_IMAGE",
    "ROCKETMQ_IMAGE",
    "LocalCluster",
    "ensure_images",
]


def _say(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def ensure_images() -> dict[str, Path]:
    """Build or reuse every image the node runs; returns image name → docker-archive tar."""
    from harness.rocketmq import ensure_jars

    lib = ensure_jars(cache=paths.cache_dir())
    # One builder at a time: the node's tests wait for `make test`'s background build.
    with file_lock(paths.cache_dir() / "images.lock"):
        return ensure_all(rocketmq_lib=lib)


class LocalCluster:
    """Control plane in ``home`` (kubeconfig at ``home/kubeconfig``), node in ``home/node``."""

    def __init__(self, *, home: Path, bin_dir: Path | None = None, crd: bool = True) -> None:
        """``crd=False`` leaves the CRD to whoever installs the chart (Helm owns it then)."""
        self.home = home
        self.crd = crd
        self.plane = ControlPlane(
            home=home, bin_dir=bin_dir or Path("/nonexistent"), node_address=NODE_IP
        )
        self.node = Node(home=home / "node", plane=self.plane)
        self.timings: dict[str, float] = {}

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def running(self) -> bool:
        return self.node.running and self.plane.running

    def start(self) -> dict[str, float]:
        t0 = time.monotonic()
        bin_dir = ensure_binaries(node=True)
        self.plane.bin_dir = self.node.bin_dir = bin_dir
        self.timings["binaries"] = time.monotonic() - t0
        t1 = time.monotonic()
        archives = ensure_images()
        self.timings["images"] = time.monotonic() - t1
        try:
            # The bridge first: kube-apiserver listens on its address.
            self.node.bridge_up()
            t1 = time.monotonic()
            self.plane.start()
            self.timings["control plane"] = time.monotonic() - t1
            self.timings |= self.node.start(images=list(archives.values()))
            if self.crd:
                self.plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
                self.plane.kubectl(
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    "crd/agentpipelines.agentprod.io",
                )
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self.timings

    def stop(self) -> None:
        if self.plane.running:
            self.plane.bin_dir = self.node.bin_dir = ensure_binaries(node=True)
            self._delete_workloads()
        self.node.stop()
        self.plane.stop()
        # Like a kind cluster deleted: the next cluster-up starts empty (no stale releases).
        shutil.rmtree(self.home / "etcd", ignore_errors=True)
        mounts = Path("/proc/self/mounts").read_text()
        if str(self.node.home) not in mounts:  # never delete through a leftover mount
            shutil.rmtree(self.node.home, ignore_errors=True)

    def _delete_workloads(self) -> None:
        """Let the kubelet stop the pods (CNI teardown, volumes) before it stops itself."""
        with contextlib.suppress(ServiceError, OSError):
            self.plane.kubectl(
                "delete", "agentpipelines", "--all", "-A", "--wait=false", check=False
            )
            self.plane.kubectl(
                "delete",
                "deployments,statefulsets,daemonsets,jobs,replicasets",
                "--all",
                "-A",
                "--wait=false",
                check=False,
            )
            if self.node.running:
                self.plane.kubectl(
                    "delete",
                    "pods",
                    "--all",
                    "-A",
                    "--grace-period=2",
                    "--timeout=20s",
                    check=False,
                    timeout=60,
                )
