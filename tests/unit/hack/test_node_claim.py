"""A starting node and the bridge it finds: wait for a live node, take a dead one's leftovers.

Stop 23's CI waited 600 s on a bridge whose node had been killed with its session, and failed
every pod test. These tests pin who counts as alive, with real processes and pidfiles."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.kubernetes import ControlPlane
from harness.node import Node, bridge_claim
from harness.processes import write_pidfile


@pytest.mark.parametrize(
    ("bridge_exists", "owner_home", "owner_alive", "claim"),
    [
        (False, None, False, "create"),
        (False, "/old/node", False, "create"),
        (True, "/old/node", True, "wait"),
        (True, None, False, "wait"),  # nobody recorded it: never touched
        (True, "/old/node", False, "take over"),
    ],
)
def test_bridge_claim(
    bridge_exists: bool, owner_home: str | None, owner_alive: bool, claim: str
) -> None:
    assert (
        bridge_claim(bridge_exists=bridge_exists, owner_home=owner_home, owner_alive=owner_alive)
        == claim
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def _node(home: Path) -> Node:
    return Node(home=home, plane=ControlPlane(home=home, bin_dir=Path("/nonexistent")))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_test_sessions_node_lives_as_long_as_its_starter(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    node = _node(tmp_path)
    write_pidfile(path=tmp_path / "kubelet.pid", pid=sleeper.pid)
    write_pidfile(path=tmp_path / "starter.pid", pid=sleeper.pid)
    assert node.alive
    # The session was killed; its kubelet lingers as an orphan: the node is dead all the same.
    write_pidfile(path=tmp_path / "starter.pid", pid=_dead_pid())
    assert not node.alive


def test_a_detached_node_lives_while_any_of_its_processes_does(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    node = _node(tmp_path)
    write_pidfile(path=tmp_path / "starter.pid", pid=_dead_pid())
    write_pidfile(path=tmp_path / "containerd.pid", pid=sleeper.pid)
    node.detach()
    assert node.alive
    write_pidfile(path=tmp_path / "containerd.pid", pid=_dead_pid())
    assert not node.alive


def test_a_node_whose_home_is_gone_is_dead(tmp_path: Path) -> None:
    assert not _node(tmp_path / "deleted").alive
