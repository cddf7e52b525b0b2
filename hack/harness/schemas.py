"""Published JSON schemas the unit tests validate against, fetched once into the cache.

skaffold's schema of `skaffold.yaml` ships inside its Go module (docs-v2/content/en/schemas/),
so `go mod download` (the Go module proxy) fetches the module zip into a throw-away module
cache, and the one schema file is kept as ``<cache>/schemas/skaffold-<apiVersion>.json``.
Called by `python -m harness schemas` (`make system-deps`); tests/unit/test_skaffold.py reads it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from harness.processes import ServiceError

SKAFFOLD_MODULE = "github.com/GoogleContainerTools/skaffold/v2"
SKAFFOLD_VERSION = "v2.16.1"
SKAFFOLD_API = "v4beta13"  # apiVersion skaffold/v4beta13, the newest in SKAFFOLD_VERSION


def skaffold_schema_path(*, cache: Path) -> Path:
    return cache / "schemas" / f"skaffold-{SKAFFOLD_API}.json"


def ensure_skaffold_schema(*, cache: Path) -> Path:
    """Return the cached schema of skaffold/<SKAFFOLD_API>, downloading the module if needed."""
    target = skaffold_schema_path(cache=cache)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        go = shutil.which("go")
        if go is None:
            raise ServiceError("go not found; it is needed once to fetch skaffold's schema")
        with tempfile.TemporaryDirectory(prefix=".skaffold-", dir=target.parent) as tmp:
            schema = _schema_from_module(go=go, work=Path(tmp))
            json.loads(schema)  # a truncated or HTML answer fails here, not in the tests
            partial = Path(tmp) / target.name
            partial.write_bytes(schema)
            partial.rename(target)
    return target


def _schema_from_module(*, go: str, work: Path) -> bytes:
    module = f"{SKAFFOLD_MODULE}@{SKAFFOLD_VERSION}"
    # A private, writable module cache: the ~45 MB module goes away with `work`.
    env = os.environ | {"GOMODCACHE": str(work / "mod"), "GOFLAGS": "-modcacherw"}
    done = subprocess.run(
        [go, "mod", "download", "-json", module],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServiceError(f"go mod download {module} failed:\n{done.stdout}{done.stderr}")
    archive = json.loads(done.stdout)["Zip"]
    member = f"{module}/docs-v2/content/en/schemas/{SKAFFOLD_API}.json"
    with zipfile.ZipFile(archive) as bundle:
        try:
            return bundle.read(member)
        except KeyError:
            raise ServiceError(f"{member} not in {archive}") from None
