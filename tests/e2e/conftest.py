"""The control plane as a user runs it: a real kube-apiserver (+ etcd, kube-controller-manager)
with the CRD installed, the `agentprod-operator` process watching all namespaces, and the real
RocketMQ of the session. Each test gets its own namespace and its own topic/group names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.cluster import LocalCluster
from harness.kubernetes import ControlPlane, ensure_binaries
from harness.rocketmq import RocketMQ

from tests.e2e.helpers import CRD_FILE, OPERATOR_METRICS_PORT, Cluster

OPERATOR = str(Path(sys.executable).with_name("agentprod-operator"))
RECONCILE_SECONDS = 2


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


@pytest.fixture
def cluster(control_plane: ControlPlane, operator: Path, rocketmq: RocketMQ) -> Iterator[Cluster]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", namespace)
    yield Cluster(control_plane, namespace, rocketmq)
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
