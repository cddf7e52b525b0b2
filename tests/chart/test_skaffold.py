"""skaffold.yaml, checked against skaffold's own published JSON schema of its apiVersion.

There is no skaffold binary here; `python -m harness schemas` (`make system-deps`) takes the
schema from skaffold's Go module into the cache. The file and each profile with its JSON
patches applied must validate (the schema forbids unknown fields, so a typo fails); the helm
release must set the chart's image values from the artifacts skaffold built; the kind profile
must keep images local and deploy them by tag, and keep its pipeline out of the release that
holds the CRD (a first install of both in one release fails on a cluster without the CRD).
`helm template` then renders each release with the --set flags skaffold would pass (fake build
outputs in the templates), for both set-ups.
"""

from __future__ import annotations

import copy
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from harness import paths, schemas

from tests.chart.charts import ROOT, env_of
from tests.chart.skaffold import (
    DIGEST,
    TEMPLATE,
    install_order,
    load,
    release,
    releases,
    set_flags,
    with_profile,
)

CHART = "charts/agentprod"
MAIN = "agentprod"  # CRD, operator, API and (kind) the dev Redis and RocketMQ
PIPELINES = "agentprod-pipelines"  # kind: the pipelines alone


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = yaml.safe_load(schemas.ensure_skaffold_schema(cache=paths.cache_dir()).read_text())
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load()


def errors(validator: jsonschema.Draft7Validator, config: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(config)]


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
    assert [item["name"] for item in releases(config)] == [MAIN]
    helm = release(config, MAIN)
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
    assert {item["name"] for item in releases(kind)} == {MAIN, PIPELINES}
    for helm in releases(kind):
        # local images have no registry digest: `tag@` would be an invalid reference
        assert all("DIGEST" not in value for value in helm["setValueTemplates"].values())
        assert helm["setValueTemplates"]["image.tag"] == "{{.IMAGE_TAG_agentprod}}"
        assert helm["setValues"]["image.pullPolicy"] == "IfNotPresent"
    assert release(kind, MAIN)["setValues"]["operator.image.pullPolicy"] == "IfNotPresent"
    assert release(config, MAIN)["setValueTemplates"]["image.tag"].endswith("DIGEST_agentprod}}")


def test_kind_profile_installs_the_pipelines_after_the_crd(config: dict[str, Any]) -> None:
    kind = with_profile(config, "kind")
    # installed after the release with the CRD and the operator (dependsOn)...
    assert install_order(kind) == [MAIN, PIPELINES]
    # ...and deleted before it, while the operator still runs to release their finalizers
    assert [item["name"] for item in releases(kind)] == [PIPELINES, MAIN]
    pipelines = release(kind, PIPELINES)
    assert pipelines["chartPath"] == CHART
    assert pipelines["namespace"] == release(kind, MAIN)["namespace"]
    assert {
        key: pipelines["setValues"][key]
        for key in ("crds.install", "operator.enabled", "api.enabled")
    } == {"crds.install": False, "operator.enabled": False, "api.enabled": False}
    assert not any(key.startswith("pipelines") for key in release(kind, MAIN)["setValues"])


def helm_template(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """`helm template` with the --set flags skaffold's helm deployer passes for the release."""
    from harness.kubernetes import ensure_binaries

    helm = release(config, name)
    argv = [str(ensure_binaries() / "helm"), "template", helm["name"], str(ROOT / CHART)]
    argv += [f"--namespace={helm['namespace']}", *set_flags(helm)]
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


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return [obj["kind"] for obj in objects]


def test_chart_renders_the_built_images(config: dict[str, Any]) -> None:
    objects = helm_template(config, MAIN)
    images = {name: item["image"] for name, item in containers(objects).items()}
    assert images == {
        "agentprod": f"registry.test/agentprod:3f2c9a1@{DIGEST}",
        "agentprod-operator": f"registry.test/agentprod-operator:3f2c9a1@{DIGEST}",
    }
    assert kinds(objects).count("CustomResourceDefinition") == 1
    assert "AgentPipeline" not in kinds(objects)


def test_chart_renders_the_kind_profile(config: dict[str, Any]) -> None:
    kind = with_profile(config, "kind")
    objects = helm_template(kind, MAIN)
    assert kinds(objects).count("CustomResourceDefinition") == 1
    assert "AgentPipeline" not in kinds(objects)
    built = containers(objects)
    assert built["agentprod"]["image"] == "registry.test/agentprod:3f2c9a1"
    assert built["agentprod-operator"]["image"] == "registry.test/agentprod-operator:3f2c9a1"
    assert {item["imagePullPolicy"] for item in built.values()} == {"IfNotPresent"}
    assert {"redis", "rocketmq"} <= set(built)  # the chart's dev services
    (forward,) = kind["portForward"]
    services = {
        (obj["metadata"]["name"], obj["metadata"]["namespace"]): obj
        for obj in objects
        if obj["kind"] == "Service"
    }
    service = services[(forward["resourceName"], forward["namespace"])]
    assert forward["port"] in [port["port"] for port in service["spec"]["ports"]]


def test_kind_pipeline_release_holds_the_pipeline_alone(config: dict[str, Any]) -> None:
    kind = with_profile(config, "kind")
    objects = helm_template(kind, PIPELINES)
    assert kinds(objects) == ["AgentPipeline"]  # no CRD, no Deployments, no Services
    (pipeline,) = objects
    assert pipeline["metadata"]["name"] == "price-alerts"
    assert pipeline["metadata"]["namespace"] == release(kind, MAIN)["namespace"]
    assert pipeline["spec"]["worker"]["image"] == "registry.test/agentprod:3f2c9a1"
    assert pipeline["spec"]["worker"]["imagePullPolicy"] == "IfNotPresent"
    assert pipeline["spec"]["topics"]["request"]["name"] == "TopicTest"
    assert pipeline["spec"]["consumerGroup"]["name"] == "GID_AGENT_PYTHON"


def test_kind_pipeline_uses_the_dev_services_of_the_main_release(config: dict[str, Any]) -> None:
    kind = with_profile(config, "kind")
    main = helm_template(kind, MAIN)
    (pipeline,) = helm_template(kind, PIPELINES)
    services = {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj
        for obj in main
        if obj["kind"] == "Service"
    }

    def points_at(address: str, component: str) -> None:
        parts = urlsplit(address if "://" in address else f"//{address}")
        service = services[component]
        namespace = service["metadata"]["namespace"]
        assert parts.hostname == f"{service['metadata']['name']}.{namespace}.svc", address
        assert parts.port in [port["port"] for port in service["spec"]["ports"]], address

    spec = pipeline["spec"]
    points_at(spec["redis"]["url"], "redis")
    points_at(spec["rocketmq"]["endpoint"], "rocketmq")
    points_at(spec["rocketmq"]["nameServer"], "rocketmq")
    # the same addresses the API of the main release is given
    (api,) = [
        obj for obj in main if obj["kind"] == "Deployment" and "-api" in obj["metadata"]["name"]
    ]
    env = env_of(api["spec"]["template"]["spec"]["containers"][0])
    assert (spec["redis"]["url"], spec["rocketmq"]["endpoint"], spec["rocketmq"]["nameServer"]) == (
        env["REDIS_URL"],
        env["MQ_ENDPOINT"],
        env["MQ_NAMESRV"],
    )
