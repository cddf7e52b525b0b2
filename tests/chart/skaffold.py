"""skaffold.yaml as skaffold's helm deployer reads it, shared by tests/unit/test_skaffold.py and
tests/e2e/test_chart.py: a profile's JSON patches applied, the releases in the order skaffold
installs and deletes them, and the `--set` flags it passes to helm for fake build outputs.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonpatch
import yaml

from tests.chart.charts import ROOT

# skaffold's template names: IMAGE_REPO_/IMAGE_TAG_/IMAGE_DIGEST_<artifact image, "-" as "_">
TEMPLATE = re.compile(r"\{\{\s*\.IMAGE_(REPO|TAG|DIGEST)_(\w+)\s*\}\}")

# What a build hands the templates: IMAGE_TAG is the tag alone; local (kind) builds get their
# image ID as tag and have no registry digest.
DIGEST = "sha256:" + "ab" * 32
BUILT = {
    "IMAGE_REPO_agentprod": "registry.test/agentprod",
    "IMAGE_TAG_agentprod": "3f2c9a1",
    "IMAGE_DIGEST_agentprod": DIGEST,
    "IMAGE_REPO_agentprod_operator": "registry.test/agentprod-operator",
    "IMAGE_TAG_agentprod_operator": "3f2c9a1",
    "IMAGE_DIGEST_agentprod_operator": DIGEST,
}


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return loaded


def with_profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The config as `skaffold -p name` sees it (this file's profiles only use patches)."""
    (profile,) = [item for item in config["profiles"] if item["name"] == name]
    assert set(profile) <= {"name", "activation", "patches"}
    base = {key: value for key, value in config.items() if key != "profiles"}
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(base), profile["patches"])
    return patched


def releases(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The helm releases in list order: the order `skaffold delete` (and Ctrl-C) removes them."""
    found: list[dict[str, Any]] = config["deploy"]["helm"]["releases"]
    return found


def release(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [item for item in releases(config) if item["name"] == name]
    return found


def install_order(config: dict[str, Any]) -> list[str]:
    """Release names in the order skaffold installs them: by dependency level (`dependsOn`),
    list order within a level (skaffold's helm DependencyGraph.GetReleasesByLevel)."""
    listed = releases(config)
    names = [item["name"] for item in listed]
    level: dict[str, int] = {}

    def level_of(name: str, seen: tuple[str, ...] = ()) -> int:
        assert name in names, f"dependsOn names no release: {name}"
        assert name not in seen, f"dependsOn cycle through {name}"
        if name not in level:
            (item,) = [item for item in listed if item["name"] == name]
            deps = item.get("dependsOn", [])
            level[name] = 1 + max((level_of(dep, (*seen, name)) for dep in deps), default=-1)
        return level[name]

    return sorted(names, key=lambda name: (level_of(name), names.index(name)))


def set_flags(helm_release: dict[str, Any]) -> list[str]:
    """The `--set key=value` arguments skaffold's helm deployer passes for the release, the
    image templates filled in from BUILT."""
    flags = [
        f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        for key, value in sorted(helm_release.get("setValues", {}).items())
    ]
    flags += [
        f"{key}={TEMPLATE.sub(lambda m: BUILT[f'IMAGE_{m[1]}_{m[2]}'], value)}"
        for key, value in sorted(helm_release.get("setValueTemplates", {}).items())
    ]
    argv: list[str] = []
    for flag in flags:
        argv += ["--set", flag]
    return argv
