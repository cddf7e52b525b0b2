"""skaffold.yaml, checked against skaffold's own published JSON schema of its apiVersion.

There is no skaffold binary here; `python -m harness schemas` (`make system-deps`) takes the
schema from skaffold's Go module into the cache. The file and each profile with its JSON
patches applied must validate (the schema forbids unknown fields, so a typo fails); the helm
release must set the chart's image values from the artifacts skaffold built; the kind profile
must keep images local and deploy them by tag. `helm template` then renders the chart with the
--set flags skaffold would pass (fake build outputs in the templates), for both set-ups.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import pytest
import yaml
from harness import paths, schemas

ROOT = Path(__file__).resolve().parents[2]
CHART = "charts/agentprod"
TEMPLATE = re.compile(r"\{\{\s*\.IMAGE_(REPO|TAG|DIGEST)_(\w+)\s*\}\}")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = yaml.safe_load(schemas.ensure_skaffold_schema(cache=paths.cache_dir()).read_text())
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return loaded


def with_profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The config as `skaffold -p name` sees it (this file's profiles only use patches)."""
    (profile,) = [item for item in config["profiles"] if item["name"] == name]
    assert set(profile) <= {"name", "activation", "patches"}
    base = {key: value for key, value in config.items() if key != "profiles"}
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(base), profile["patches"])
    return patched


def errors(validator: jsonschema.Draft7Validator, config: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(config)]


def release(config: dict[str, Any]) -> dict[str, Any]:
    (only,) = config["deploy"]["helm"]["releases"]
    assert isinstance(only, dict)
    return only


def test_api_version_is_the_cached_schemas(config: dict[str, Any]) -> None:
    assert config["apiVersion"] == f"skaffold/{schemas.SKAFFOLD_API}"


def test_validates(validator: jsonschema.Draft7Validator, config: dict[str, Any]) -> None:
    assert errors(validator, config) == []


@pytest.mark.parametrize("profile", ["kind"])
def test_profile_validates(
    validator: jsonschema.Draft7Validator, config: dict[str, Any], profile: str
) -> None:
    assert errors(validator, with_profile(config, profile)) == []


def test_schema_rejects_a_typo(
    validator: jsonschema.Draft7Validator, config: dict[str, Any]
) -> None:
    broken = copy.deepcopy(config)
    broken["build"]["artifacts"][0]["docker"]["dockerFile"] = "app/Dockerfile"
    assert errors(validator, broken)


def test_builds_both_images_from_the_repository_root(config: dict[str, Any]) -> None:
    built = {
        artifact["image"]: (artifact["context"], artifact["docker"]["dockerfile"])
        for artifact in config["build"]["artifacts"]
    }
    assert built == {
        "agentprod": (".", "app/Dockerfile"),
        "agentprod-operator": (".", "operator/Dockerfile"),
    }


def test_release_sets_the_chart_images_from_the_builds(config: dict[str, Any]) -> None:
    helm = release(config)
    assert helm["chartPath"] == CHART
    # skaffold's template names: the artifact's image with "/" and "-" as "_"
    artifacts = {re.sub(r"[/\-]", "_", item["image"]) for item in config["build"]["artifacts"]}
    assert helm["setValueTemplates"] == {
        "image.repository": "{{.IMAGE_REPO_agentprod}}",
        "image.tag": "{{.IMAGE_TAG_agentprod}}@{{.IMAGE_DIGEST_agentprod}}",
        "operator.image.repository": "{{.IMAGE_REPO_agentprod_operator}}",
        "operator.image.tag": (
            "{{.IMAGE_TAG_agentprod_operator}}@{{.IMAGE_DIGEST_agentprod_operator}}"
        ),
    }
    for value in helm["setValueTemplates"].values():
        for _, name in TEMPLATE.findall(value):
            assert name in artifacts, f"{value} names no artifact"
    assert helm["setValues"]["crds.install"] is True


def test_kind_profile_loads_images_and_deploys_by_tag(config: dict[str, Any]) -> None:
    (profile,) = [item for item in config["profiles"] if item["name"] == "kind"]
    assert profile["activation"] == [{"kubeContext": "kind-agentprod"}]
    kind = with_profile(config, "kind")
    assert kind["build"]["local"]["push"] is False
    assert kind["deploy"]["kubeContext"] == "kind-agentprod"
    helm = release(kind)
    # local images have no registry digest: `tag@` would be an invalid reference
    assert all("DIGEST" not in value for value in helm["setValueTemplates"].values())
    assert helm["setValues"]["image.pullPolicy"] == "IfNotPresent"
    assert helm["setValues"]["operator.image.pullPolicy"] == "IfNotPresent"
    assert release(config)["setValueTemplates"]["image.tag"].endswith("DIGEST_agentprod}}")


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


def helm_template(config: dict[str, Any]) -> list[dict[str, Any]]:
    """`helm template` with the --set flags skaffold's helm deployer passes for the release."""
    from harness.kubernetes import ensure_binaries

    helm = release(config)
    flags = [
        f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        for key, value in sorted(helm["setValues"].items())
    ]
    flags += [
        f"{key}={TEMPLATE.sub(lambda m: BUILT[f'IMAGE_{m[1]}_{m[2]}'], value)}"
        for key, value in sorted(helm["setValueTemplates"].items())
    ]
    argv = [str(ensure_binaries() / "helm"), "template", helm["name"], str(ROOT / CHART)]
    argv += [f"--namespace={helm['namespace']}"]
    for flag in flags:
        argv += ["--set", flag]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def containers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        container["image"].split(":")[0].split("/")[-1]: container
        for obj in objects
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    }


def test_chart_renders_the_built_images(config: dict[str, Any]) -> None:
    objects = helm_template(config)
    images = {name: item["image"] for name, item in containers(objects).items()}
    assert images == {
        "agentprod": f"registry.test/agentprod:3f2c9a1@{DIGEST}",
        "agentprod-operator": f"registry.test/agentprod-operator:3f2c9a1@{DIGEST}",
    }
    assert [obj["kind"] for obj in objects].count("CustomResourceDefinition") == 1


def test_chart_renders_the_kind_profile(config: dict[str, Any]) -> None:
    kind = with_profile(config, "kind")
    objects = helm_template(kind)
    built = containers(objects)
    assert built["agentprod"]["image"] == "registry.test/agentprod:3f2c9a1"
    assert built["agentprod-operator"]["image"] == "registry.test/agentprod-operator:3f2c9a1"
    assert {item["imagePullPolicy"] for item in built.values()} == {"IfNotPresent"}
    assert {"redis", "rocketmq"} <= set(built)  # the chart's dev services
    (pipeline,) = [obj for obj in objects if obj["kind"] == "AgentPipeline"]
    assert pipeline["metadata"]["name"] == "price-alerts"
    assert pipeline["spec"]["worker"]["image"] == "registry.test/agentprod:3f2c9a1"
    (forward,) = kind["portForward"]
    services = {
        (obj["metadata"]["name"], obj["metadata"]["namespace"]): obj
        for obj in objects
        if obj["kind"] == "Service"
    }
    service = services[(forward["resourceName"], forward["namespace"])]
    assert forward["port"] in [port["port"] for port in service["spec"]["ports"]]
