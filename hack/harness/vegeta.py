"""vegeta, a constant-rate (open-loop) HTTP load generator, built once from the Go module proxy.

Built like `hack/build-control-plane.sh` builds etcd: a throwaway module that requires
``github.com/tsenart/vegeta/v12@<VEGETA_VERSION>`` (plain ``go install pkg@version`` also asks
the proxy for the module's version list, which some proxies refuse), ``go mod tidy``, ``go
build``; the binary lands in a temp folder renamed to ``<cache>/vegeta-<version>/`` once it
built, under a file lock so concurrent callers build once. Needs ``go`` the first time only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import paths
from harness.processes import ServiceError

VEGETA_VERSION = "v12.12.0"
MODULE = "github.com/tsenart/vegeta/v12"


def vegeta_path(*, cache: Path) -> Path:
    """Where :func:`ensure_vegeta` puts the binary; no building."""
    return cache / f"vegeta-{VEGETA_VERSION}" / "vegeta"


def ensure_vegeta(*, cache: Path | None = None) -> Path:
    """Path of the cached ``vegeta`` binary, building it when missing."""
    binary = vegeta_path(cache=cache or paths.cache_dir())
    if binary.is_file():
        return binary
    base = binary.parent.parent
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".vegeta.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        go = shutil.which("go")
        if go is None:
            raise ServiceError("go not found; it is needed once to build vegeta")
        tmp = Path(tempfile.mkdtemp(prefix=".vegeta-", dir=base))
        try:
            _build(go=go, out=tmp / "vegeta", work=tmp / "module")
            shutil.rmtree(tmp / "module")
            tmp.rename(binary.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return binary


def _build(*, go: str, out: Path, work: Path) -> None:
    work.mkdir()
    (work / "tools.go").write_text(f'//go:build tools\npackage tools\n\nimport _ "{MODULE}"\n')
    ldflags = f"-s -w -X main.Version={VEGETA_VERSION}"
    steps = [
        [go, "mod", "init", "local/vegetabin"],
        [go, "mod", "edit", f"-require={MODULE}@{VEGETA_VERSION}"],
        [go, "mod", "tidy"],
        [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), MODULE],
    ]
    for argv in steps:
        done = subprocess.run(
            argv, cwd=work, capture_output=True, text=True, check=False, env=os.environ
        )
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    if not out.is_file():
        raise ServiceError(f"go build left no {out}")
