"""A local Kubernetes control plane without Docker: etcd + kube-apiserver + kube-controller-manager
(+ kube-scheduler when it serves a real node, see :mod:`harness.node`).

The binaries are built from the Go module proxy by `hack/build-control-plane.sh` and cached
under the cache dir, keyed by version. Flags follow controller-runtime's envtest: 127.0.0.1
only, RBAC on, a client-certificate admin user (CN=admin, O=system:masters), service-account
keys, and kube-controller-manager for Deployments → ReplicaSets → Pods and garbage collection.
Without a node (``node=False``) no scheduler or kubelet runs, so Pods stay Pending. With
``node=True`` kube-apiserver listens on the node's bridge address instead (pods reach it there
through the ``kubernetes`` Service), the ServiceAccount admission plugin mounts tokens, and the
controller manager also runs the node-lifecycle, endpoint(slice) and pod-GC controllers.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import ssl
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness import paths
from harness.apps import free_port
from harness.processes import (
    ServiceError,
    file_lock,
    kill_process,
    read_pidfile,
    remove_pidfile,
    start_background,
    stop_process,
    wait_until,
    write_pidfile,
)

BUILD_SCRIPT = paths.repo_root() / "hack" / "build-control-plane.sh"
HOST = "127.0.0.1"
CONTROLLERS = ",".join(
    [
        "deployment-controller",
        "replicaset-controller",
        "garbage-collector-controller",
        "namespace-controller",
        "serviceaccount-controller",
        "serviceaccount-token-controller",
        "root-ca-certificate-publisher-controller",
    ]
)
NODE_CONTROLLERS = ",".join(
    [
        "node-lifecycle-controller",
        "taint-eviction-controller",
        "endpoints-controller",
        "endpointslice-controller",
        "endpointslice-mirroring-controller",
        "pod-garbage-collector-controller",
        "disruption-controller",
        "job-controller",
        "ttl-after-finished-controller",
    ]
)
SERVICE_CIDR = "10.0.0.0/24"
COMPONENTS = ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


def ensure_binaries(*, node: bool = True) -> Path:
    """Build (once) or reuse the cached control-plane binaries; returns their folder.

    ``node`` also builds what a real node runs (kubelet, kube-scheduler, kube-proxy, coredns).
    """
    env = os.environ | {"AGENTPROD_CACHE": str(paths.cache_dir())}
    what = "all" if node else "control-plane"
    # One build at a time: a test that needs the binaries waits for the build in progress
    # (`make test` runs it beside the tests), then finds them cached.
    with file_lock(paths.cache_dir() / "control-plane" / "build.lock"):
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT), what], env=env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise ServiceError(f"building the control plane failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) rooted at `home`."""

    def __init__(
        self,
        *,
        home: Path,
        bin_dir: Path,
        controller_manager: bool = True,
        node_address: str | None = None,
    ) -> None:
        self.home = home.resolve()
        self.bin_dir = bin_dir
        self.controller_manager = controller_manager
        # With a node: kube-apiserver on the bridge address, scheduler, node controllers.
        self.node_address = node_address
        self.host = node_address or HOST
        self.pki = self.home / "pki"
        self.kubeconfig = self.home / "kubeconfig"
        self._ports_file = self.home / "ports.json"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # ---- lifecycle

    def start(self, *, timeout: float = 180.0) -> None:
        if self.running:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        ports = {"etcd": free_port(), "peer": free_port(), "apiserver": free_port()}
        self._ports_file.write_text(json.dumps(ports))
        self._write_pki()
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.home / 'etcd'}",
                f"--listen-client-urls=http://{HOST}:{ports['etcd']}",
                f"--advertise-client-urls=http://{HOST}:{ports['etcd']}",
                f"--listen-peer-urls=http://{HOST}:{ports['peer']}",
                f"--initial-advertise-peer-urls=http://{HOST}:{ports['peer']}",
                f"--initial-cluster=default=http://{HOST}:{ports['peer']}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://{HOST}:{ports['etcd']}",
                f"--cert-dir={self.pki}",
                f"--tls-cert-file={self.pki / 'apiserver.crt'}",
                f"--tls-private-key-file={self.pki / 'apiserver.key'}",
                f"--client-ca-file={self.pki / 'ca.crt'}",
                f"--secure-port={ports['apiserver']}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--service-account-issuer=https://{self.host}:{ports['apiserver']}/",
                f"--service-account-key-file={self.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={self.pki / 'sa.key'}",
                *(
                    ["--kubelet-preferred-address-types=InternalIP"]
                    if self.node_address
                    else ["--disable-admission-plugins=ServiceAccount"]
                ),
                "--v=0",
            ],
        )
        self._write_kubeconfig(ports["apiserver"])
        try:
            wait_until(
                check=self._healthy,
                timeout=timeout,
                what="kube-apiserver /readyz",
                interval=0.5,
                proc=apiserver,
                log=self.home / "kube-apiserver.log",
            )
        except ServiceError:
            self.kill()
            raise
        if self.controller_manager:
            self._spawn(
                "kube-controller-manager",
                [
                    str(self.bin_dir / "kube-controller-manager"),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--authentication-kubeconfig={self.kubeconfig}",
                    f"--authorization-kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    f"--bind-address={HOST}",
                    "--secure-port=0",
                    "--controllers="
                    + (f"{CONTROLLERS},{NODE_CONTROLLERS}" if self.node_address else CONTROLLERS),
                    f"--service-account-private-key-file={self.pki / 'sa.key'}",
                    f"--root-ca-file={self.pki / 'ca.crt'}",
                    "--use-service-account-credentials=false",
                    "--concurrent-deployment-syncs=2",
                    "--v=0",
                ],
            )
        if self.node_address:
            self._spawn(
                "kube-scheduler",
                [
                    str(self.bin_dir / "kube-scheduler"),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--authentication-kubeconfig={self.kubeconfig}",
                    f"--authorization-kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    f"--bind-address={HOST}",
                    f"--secure-port={free_port()}",
                    "--v=0",
                ],
            )
        wait_until(
            check=lambda: self._get("/api/v1/namespaces/default") is not None,
            timeout=timeout,
            what="namespace default",
        )

    def stop(self) -> None:
        for name in COMPONENTS:
            pid = read_pidfile(path=self._pidfile(name))
            if pid is not None:
                # Serving a node, kube-apiserver's graceful shutdown sat out 30 s here (its
                # clients gone): a throw-away control plane loses nothing to SIGKILL after 5 s.
                stop_process(pid=pid, timeout=5 if self.node_address else 30)
            self._forget(name)

    def kill(self) -> None:
        for name in COMPONENTS:
            pid = read_pidfile(path=self._pidfile(name))
            if pid is not None:
                kill_process(pid=pid)
            self._forget(name)

    @property
    def running(self) -> bool:
        return read_pidfile(path=self._pidfile("kube-apiserver")) is not None and self._healthy()

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane."""
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise ServiceError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}"
            )
        return done

    # ---- internals

    def _pidfile(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        process = start_background(argv=argv, log=self.home / f"{name}.log")
        self._procs[name] = process
        write_pidfile(path=self._pidfile(name), pid=process.pid)
        return process

    def _forget(self, name: str) -> None:
        remove_pidfile(path=self._pidfile(name))
        process = self._procs.pop(name, None)
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def _ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return context

    def _port(self) -> int:
        return int(json.loads(self._ports_file.read_text())["apiserver"])

    def _get(self, path: str) -> dict[str, object] | None:
        try:
            connection = http.client.HTTPSConnection(
                self.host, self._port(), context=self._ssl(), timeout=5
            )
            connection.request("GET", path)
            answer = connection.getresponse()
            body = answer.read()
            connection.close()
        except (OSError, ssl.SSLError, ValueError):
            return None
        if answer.status != 200:
            return None
        parsed: dict[str, object] = json.loads(body) if body.startswith(b"{") else {"ok": True}
        return parsed

    def _healthy(self) -> bool:
        return self._ports_file.exists() and self._get("/readyz") is not None

    def _write_pki(self) -> None:
        if (self.pki / "admin.crt").exists() and self._serves_host():
            return
        self.pki.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentprod-local-ca")])
        ca = _certificate(subject=ca_name, issuer=ca_name, key=ca_key, signer=ca_key, ca=True)
        _write(self.pki / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        _write(self.pki / "ca.key", _pem_key(ca_key))
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _certificate(
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            issuer=ca_name,
            key=server_key,
            signer=ca_key,
            ca=False,
            names=[
                x509.DNSName("localhost"),
                *(
                    x509.DNSName(name)
                    for name in (
                        "kubernetes",
                        "kubernetes.default",
                        "kubernetes.default.svc",
                        "kubernetes.default.svc.cluster.local",
                    )
                ),
                x509.IPAddress(ipaddress.ip_address(HOST)),
                x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                *(
                    [x509.IPAddress(ipaddress.ip_address(self.node_address))]
                    if self.node_address
                    else []
                ),
            ],
        )
        _write(self.pki / "apiserver.crt", server.public_bytes(serialization.Encoding.PEM))
        _write(self.pki / "apiserver.key", _pem_key(server_key))
        admin_key = ec.generate_private_key(ec.SECP256R1())
        admin = _certificate(
            subject=x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                ]
            ),
            issuer=ca_name,
            key=admin_key,
            signer=ca_key,
            ca=False,
        )
        _write(self.pki / "admin.crt", admin.public_bytes(serialization.Encoding.PEM))
        _write(self.pki / "admin.key", _pem_key(admin_key))
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(self.pki / "sa.key", _pem_key(sa_key))
        _write(
            self.pki / "sa.pub",
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    def _serves_host(self) -> bool:
        """True if the existing serving certificate names our listen address."""
        try:
            cert = x509.load_pem_x509_certificate((self.pki / "apiserver.crt").read_bytes())
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (OSError, ValueError, x509.ExtensionNotFound):
            return False
        return ipaddress.ip_address(self.host) in names.get_values_for_type(x509.IPAddress)

    def _write_kubeconfig(self, port: int) -> None:
        def data(name: str) -> str:
            import base64

            return base64.b64encode((self.pki / name).read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "agentprod-local",
            "clusters": [
                {
                    "name": "agentprod-local",
                    "cluster": {
                        "server": f"https://{self.host}:{port}",
                        "certificate-authority-data": data("ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": data("admin.crt"),
                        "client-key-data": data("admin.key"),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "agentprod-local",
                    "context": {
                        "cluster": "agentprod-local",
                        "user": "admin",
                        "namespace": "default",
                    },
                }
            ],
        }
        _write(self.kubeconfig, json.dumps(config, indent=2).encode())


def _certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    key: object,
    signer: object,
    ca: bool,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


def _pem_key(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    path.chmod(0o600)


def cluster_home() -> Path:
    return paths.state_dir() / "cluster"
