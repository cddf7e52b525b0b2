"""The RocketMQ client's import-time log folder with an unwritable home (a pod with a
read-only root filesystem and HOME=/nonexistent): the runtime still imports, logging under the
temporary directory; with no writable place at all the error says what to mount."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from agentprod.broker import client_logs


def test_runtime_imports_with_an_unwritable_home(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": "/proc/agentprod-unwritable",  # procfs: no folder can be made there
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import agentprod.runtime, os; print(os.environ['HOME'])"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path)
    assert (tmp_path / "logs" / "rocketmq_python").is_dir()


def test_a_writable_home_is_kept(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    assert client_logs.prepare(environ) == str(tmp_path)
    assert environ == {"HOME": str(tmp_path)}


def test_no_writable_place_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_logs.tempfile, "gettempdir", lambda: "/proc/agentprod-no-tmp")
    with pytest.raises(client_logs.NoWritableHome, match="HOME=/proc/agentprod-unwritable"):
        client_logs.prepare({"HOME": "/proc/agentprod-unwritable"})
