"""The control plane as a user runs it: a real kube-apiserver (+ etcd, kube-controller-manager)
with the CRD installed, the `agentprod-operator` process watching all namespaces, and the real
RocketMQ of the session. Each test gets its own namespace and its own topic/group names.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.apps import free_port
from harness.cluster import LocalCluster
from harness.kubernetes import ControlPlane, ensure_binaries
from harness.rocketmq import RocketMQ

ROOT = Path(__file__).parents[2]
CRD_FILE = ROOT / "crds" / "agentpipelines.agentprod.io.yaml"
EXAMPLE = ROOT / "examples" / "pipeline.yaml"
OPERATOR = str(Path(sys.executable).with_name("agentprod-operator"))
RECONCILE_SECONDS = 2
OPERATOR_METRICS_PORT = free_port()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(home=tmp_path_factory.mktemp("cluster"), bin_dir=ensure_binaries())
    plane.start()
    plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/agentpipelines.agentprod.io"
    )
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The control plane with one real node (containerd, kubelet, kube-proxy, CoreDNS) and the
    images built from the Dockerfiles imported: one per session, torn down at its end."""
    cluster = LocalCluster(home=tmp_path_factory.mktemp("node-cluster"), crd=False)
    timings = cluster.start()
    print(
        "\nnode cluster up: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
        file=sys.stderr,
    )
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    env = os.environ | {
        "KUBECONFIG": str(control_plane.kubeconfig),
        "AGENTPROD_OPERATOR_RECONCILE_INTERVAL_SECONDS": str(RECONCILE_SECONDS),
        "AGENTPROD_OPERATOR_DELETE_ATTEMPTS": "3",
        "AGENTPROD_OPERATOR_DELETE_RETRY_SECONDS": "1",
        "AGENTPROD_OPERATOR_METRICS_PORT": str(OPERATOR_METRICS_PORT),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [OPERATOR, "--all-namespaces"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    yield log
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    assert process.returncode in (0, -15), log.read_text()[-3000:]


class Cluster:
    """kubectl-level helpers bound to one namespace and the session's RocketMQ."""

    def __init__(self, plane: ControlPlane, namespace: str, rocketmq: RocketMQ) -> None:
        self.plane = plane
        self.namespace = namespace
        self.rocketmq = rocketmq
        suffix = uuid.uuid4().hex[:8]
        self.request_topic = f"TopicTest_{suffix}"
        self.result_topic = f"TopicResult_{suffix}"
        self.group = f"GID_AGENT_{suffix}"

    def manifest(self, name: str = "price-alerts", **spec: Any) -> dict[str, Any]:
        """examples/pipeline.yaml pointed at the test RocketMQ, with unique names."""
        body = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
        body["metadata"] = {"name": name, "namespace": self.namespace}
        body["spec"]["rocketmq"] |= {
            "nameServer": self.rocketmq.namesrv_addr,
            "endpoint": self.rocketmq.endpoint,
        }
        body["spec"]["topics"]["request"]["name"] = self.request_topic
        body["spec"]["topics"]["result"]["name"] = self.result_topic
        body["spec"]["consumerGroup"]["name"] = self.group
        body["spec"] |= spec
        return body

    def apply(
        self, manifest: dict[str, Any], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(
            "apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=check
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        done = self.plane.kubectl(
            "get", kind, name, "-n", self.namespace, "-o", "json", check=False
        )
        if done.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        body = self.get("agentpipeline", name) or {}
        for item in (body.get("status") or {}).get("conditions") or []:
            if item["type"] == kind:
                return dict(item)
        return None

    def wait_condition(
        self, name: str, kind: str, status: str, reason: str | None = None, timeout: float = 90
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            found = self.condition(name, kind)
            if found and found["status"] == status and reason in (None, found["reason"]):
                return found
            return None

        return wait_for(matches, timeout=timeout, what=f"{kind}={status} {reason or ''}")


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.5)


@pytest.fixture
def cluster(control_plane: ControlPlane, operator: Path, rocketmq: RocketMQ) -> Iterator[Cluster]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", namespace)
    yield Cluster(control_plane, namespace, rocketmq)
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
