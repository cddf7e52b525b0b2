"""Container images for the local node, built here without a registry or a Docker engine.

- ``pause``: the pod sandbox, a static C program (``hack/images/pause.c``) packed as an image.
- the Debian + Python base: ``debootstrap --variant=minbase`` of Debian bookworm with python3,
  python3-venv, python-is-python3, passwd and ca-certificates, committed as
  ``localhost/debian-bookworm-python3`` (what it is, not the official ``python`` image).
- ``agentprod`` and ``agentprod-operator``: ``app/Dockerfile`` and ``operator/Dockerfile``
  built by Debian's buildah on that base (``--build-arg PYTHON_BASE=…``), every step run.
- the chart's dev services: ``hack/images/redis.Dockerfile`` (Debian's redis-server) and
  ``hack/images/rocketmq.Dockerfile`` (the Maven jars of the harness on a Debian JRE).

Each image is exported as a ``docker-archive`` tar under ``$AGENTPROD_CACHE/images``, named by
a hash of everything it is built from, and imported with ``ctr -n k8s.io images import``.
buildah's storage (vfs) lives in the cache too, so the base is bootstrapped once per machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths
from harness.processes import ServiceError

SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
BASE_IMAGE = "localhost/debian-bookworm-python3:3.11"
PAUSE_IMAGE = "localhost/agentprod-pause:1.0"
APP_IMAGE = "localhost/agentprod:dev"
OPERATOR_IMAGE = "localhost/agentprod-operator:dev"
REDIS_IMAGE = "localhost/agentprod-dev-redis:7.0"
ROCKETMQ_IMAGE = "localhost/agentprod-dev-rocketmq:5.3.3"
IMAGES_DIR = paths.repo_root() / "hack" / "images"
# What app/Dockerfile and operator/Dockerfile copy (see .dockerignore).
APP_SOURCES = ("pyproject.toml", "README.md", "app/agentprod", "operator/agentprod_operator")


def _say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def images_cache() -> Path:
    return paths.cache_dir() / "images"


def _run(argv: Sequence[str], *, what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, check=False, env=env, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise ServiceError(
            f"{what} failed ({done.returncode}): {' '.join(argv)}\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def _hash_files(digest: hashlib._Hash, roots: Iterable[Path], *, base: Path) -> None:
    for root in roots:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc",):
                continue
            digest.update(str(path.relative_to(base)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")


@dataclass
class Buildah:
    """Debian's buildah with its storage (vfs) under the cache dir, chroot isolation."""

    root: Path = field(default_factory=lambda: images_cache() / "buildah")

    def __call__(self, *args: str, what: str = "buildah") -> str:
        if shutil.which("buildah") is None:
            raise ServiceError("buildah not found: `make system-deps` installs it (Debian)")
        argv = [
            "buildah",
            f"--root={self.root / 'storage'}",
            f"--runroot={self.root / 'run'}",
            "--storage-driver=vfs",
            *args,
        ]
        env = os.environ | {"BUILDAH_ISOLATION": "chroot", "STORAGE_DRIVER": "vfs"}
        return _run(argv, what=what, env=env)

    def has(self, image: str) -> bool:
        try:
            self("inspect", "--type=image", "--format={{.FromImageID}}", image)
        except ServiceError:
            return False
        return True


def _archive(name: str, key: str) -> Path:
    return images_cache() / f"{name}-{key[:16]}.tar"


def _archives_of(name: str) -> list[Path]:
    """Archives of image ``name`` (not of ``name-operator``), oldest first."""
    pattern = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{16}}\.tar$")
    found = [p for p in images_cache().glob(f"{name}-*.tar") if pattern.match(p.name)]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _prune(name: str, keep: Path) -> None:
    for old in _archives_of(name):
        if old != keep:
            old.unlink(missing_ok=True)


def _export(buildah: Buildah, image: str, archive: Path) -> None:
    tmp = archive.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    buildah("push", "--quiet", image, f"docker-archive:{tmp}:{image}", what=f"export {image}")
    tmp.replace(archive)


def ensure_pause(buildah: Buildah) -> Path:
    source = IMAGES_DIR / "pause.c"
    key = hashlib.sha256(source.read_bytes() + PAUSE_IMAGE.encode()).hexdigest()
    archive = _archive("pause", key)
    if archive.exists():
        return archive
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pause-") as tmp:
        binary = Path(tmp) / "pause"
        _run(["gcc", "-Os", "-static", "-o", str(binary), str(source)], what="gcc pause.c")
        _run(["strip", str(binary)], what="strip pause")
        container = buildah("from", "scratch", what="buildah from scratch").strip()
        try:
            buildah("copy", container, str(binary), "/pause")
            buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container)
            buildah("commit", "--quiet", container, PAUSE_IMAGE, what="commit pause")
        finally:
            buildah("rm", container)
    _export(buildah, PAUSE_IMAGE, archive)
    _prune("pause", archive)
    _say(f"pause image built in {time.monotonic() - t0:.1f}s")
    return archive


def _mirror() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            urls = words[1:] if words[:1] in (["URIs:"], ["deb"]) else []
            for url in urls:
                if "://" in url and url.rstrip("/").endswith("/debian"):
                    return url
    return "http://deb.debian.org/debian"


def ensure_base(buildah: Buildah) -> str:
    """Bootstrap (once) the Debian + Python base and commit it in buildah's storage."""
    if buildah.has(BASE_IMAGE):
        return BASE_IMAGE
    if shutil.which("debootstrap") is None:
        raise ServiceError("debootstrap not found: `make system-deps` installs it (Debian)")
    t0 = time.monotonic()
    images_cache().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=images_cache()) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(rootfs),
                _mirror(),
            ],
            what="debootstrap",
        )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        container = buildah("from", "scratch").strip()
        try:
            mount = buildah("mount", container).strip()
            _run(["cp", "-a", f"{rootfs}/.", mount], what="copy the rootfs")
            buildah("umount", container)
            buildah(
                "config",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env",
                "LANG=C.UTF-8",
                "--cmd",
                "python3",
                "--label",
                f"org.opencontainers.image.description=debootstrap {SUITE} minbase + "
                + " ".join(BASE_PACKAGES),
                container,
            )
            buildah("commit", "--quiet", container, BASE_IMAGE, what="commit the base")
        finally:
            buildah("rm", container)
    _say(f"base {BASE_IMAGE} bootstrapped in {time.monotonic() - t0:.1f}s")
    return BASE_IMAGE


def _build(
    buildah: Buildah,
    *,
    name: str,
    image: str,
    dockerfile: Path,
    context: Path,
    sources: Iterable[Path],
    build_args: dict[str, str],
    host_certificates: bool = False,
    layers: bool = False,
) -> Path:
    """buildah build; ``host_certificates`` mounts the host's CA bundle (pip behind a TLS proxy
    needs it; apt fetches from the Debian mirror over plain HTTP with signed indexes)."""
    digest = hashlib.sha256(image.encode())
    for key, value in sorted(build_args.items()):
        digest.update(f"{key}={value}\0".encode())
    _hash_files(digest, [dockerfile, *sources], base=context)
    archive = _archive(name, digest.hexdigest())
    if archive.exists():
        return archive
    if os.environ.get("AGENTPROD_IMAGES_STALE_OK") == "1":
        # For iterating on the harness while the sources move: any earlier build will do.
        earlier = _archives_of(name)
        if earlier:
            _say(f"AGENTPROD_IMAGES_STALE_OK=1: reusing {earlier[-1].name} for {image}")
            return earlier[-1]
    t0 = time.monotonic()
    args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
    buildah(
        "build",
        "--pull-never",
        "--network=host",
        f"--layers={'true' if layers else 'false'}",
        *(["--volume=/etc/ssl/certs:/etc/ssl/certs:ro"] if host_certificates else []),
        f"--file={dockerfile}",
        f"--tag={image}",
        *args,
        str(context),
        what=f"buildah build {dockerfile.name} ({image})",
    )
    _export(buildah, image, archive)
    buildah("rmi", image, what=f"rmi {image}")
    _prune(name, archive)
    _say(f"{image} built from {dockerfile} in {time.monotonic() - t0:.1f}s")
    return archive


def ensure_app_images(buildah: Buildah) -> dict[str, Path]:
    base = ensure_base(buildah)
    root = paths.repo_root()
    built = {}
    for name, image, dockerfile in (
        ("agentprod", APP_IMAGE, root / "app" / "Dockerfile"),
        ("agentprod-operator", OPERATOR_IMAGE, root / "operator" / "Dockerfile"),
    ):
        built[image] = _build(
            buildah,
            name=name,
            image=image,
            dockerfile=dockerfile,
            context=root,
            sources=[root / item for item in APP_SOURCES],
            build_args={"PYTHON_BASE": base},
            host_certificates=True,
            # The two Dockerfiles share their build stage: the second build reuses its layers.
            layers=True,
        )
    with contextlib.suppress(ServiceError):
        buildah("rmi", "--prune", what="prune dangling layers")
    return built


def ensure_dev_images(buildah: Buildah, *, rocketmq_lib: Path) -> dict[str, Path]:
    """The chart's dev Redis and RocketMQ (jars from ``rocketmq_lib``) on the same base."""
    base = ensure_base(buildah)
    built = {
        REDIS_IMAGE: _build(
            buildah,
            name="dev-redis",
            image=REDIS_IMAGE,
            dockerfile=IMAGES_DIR / "redis.Dockerfile",
            context=IMAGES_DIR,
            sources=[],
            build_args={"DEBIAN_BASE": base},
        )
    }
    with tempfile.TemporaryDirectory(prefix="rocketmq-context-", dir=images_cache()) as tmp:
        context = Path(tmp)
        shutil.copytree(rocketmq_lib, context / "lib", ignore=shutil.ignore_patterns(".*"))
        shutil.copytree(IMAGES_DIR / "rocketmq", context / "rocketmq")
        dockerfile = context / "Dockerfile"
        shutil.copy(IMAGES_DIR / "rocketmq.Dockerfile", dockerfile)
        built[ROCKETMQ_IMAGE] = _build(
            buildah,
            name="dev-rocketmq",
            image=ROCKETMQ_IMAGE,
            dockerfile=dockerfile,
            context=context,
            sources=[context / "rocketmq", context / "lib"],
            build_args={"DEBIAN_BASE": base},
        )
    return built


def ensure_all(*, rocketmq_lib: Path) -> dict[str, Path]:
    """Every image the node runs: pause, app, operator, dev Redis, dev RocketMQ."""
    buildah = Buildah()
    built = {PAUSE_IMAGE: ensure_pause(buildah)}
    built |= ensure_app_images(buildah)
    built |= ensure_dev_images(buildah, rocketmq_lib=rocketmq_lib)
    return built
