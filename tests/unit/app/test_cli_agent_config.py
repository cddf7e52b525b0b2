"""A bad AGENT or AGENT_CONFIG stops `agentprod worker` at start: exit 2, a message naming
the variable, no traceback — before any connection is made (MQ_ENDPOINT points nowhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from agentprod import cli

AGENTPROD = str(Path(sys.executable).with_name("agentprod"))


def _worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT", "MQ_", "REDIS"))}
    return subprocess.run(
        [AGENTPROD, "worker", "--health-port", "0"],
        env=base | {"MQ_ENDPOINT": "127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1/0"} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "named", "detail"),
    [
        ({"AGENT": "nope"}, "AGENT:", "unknown agent 'nope'"),
        ({"AGENT": "sleep"}, "AGENT:", "AGENTPROD_TEST_AGENTS"),
        ({"AGENT_CONFIG": "{not json"}, "AGENT_CONFIG", "not valid JSON"),
        ({"AGENT_CONFIG": '["a"]'}, "AGENT_CONFIG", "dictionary"),
        ({"AGENT_CONFIG": '{"x": 1}'}, "AGENT_CONFIG", "x: Extra inputs are not permitted"),
        (
            {"AGENT": "sleep", "AGENTPROD_TEST_AGENTS": "true", "AGENT_CONFIG": '{"seconds": "a"}'},
            "AGENT_CONFIG (for agent sleep)",
            "seconds: Input should be a valid number",
        ),
        (
            {"AGENT": "chat", "AGENT_CONFIG": '{"llm_max_tokens": "many"}'},
            "AGENT_CONFIG (for agent chat)",
            "LLM_MAX_TOKENS",
        ),
    ],
)
def test_bad_agent_settings_stop_the_worker_naming_the_variable(
    env: dict[str, str],
    named: str,
    detail: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AGENT", "AGENT_CONFIG", "AGENTPROD_TEST_AGENTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["worker", "--health-port", "0"]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("agentprod: invalid configuration")
    assert named in stderr
    assert detail in stderr
    assert stderr.count("\n") == 1, stderr


def test_the_worker_process_exits_2_without_a_traceback() -> None:
    done = _worker({"AGENT": "nope"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("agentprod: invalid configuration: AGENT: unknown agent")
    assert "Traceback" not in done.stderr


def test_a_flag_is_named_like_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["worker", "--agent", "nope", "--health-port", "0"]) == 2
    assert "AGENT: unknown agent 'nope'" in capsys.readouterr().err
