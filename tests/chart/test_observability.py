"""Tracing and log format wiring: off by default, the OTEL_* variables when on."""

from __future__ import annotations

import copy

from tests.chart.charts import PIPELINE, Chart, env_of, find, one

TRACING = {
    "observability": {
        "tracing": {
            "enabled": True,
            "endpoint": "http://otel-collector.observability:4318",
            "resourceAttributes": "deployment.environment=test",
        }
    }
}


def _envs(objects: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    api = one(objects, "Deployment", "r-agentprod-api")
    operator = one(objects, "Deployment", "r-agentprod-operator")
    pipeline = one(objects, "AgentPipeline")
    return {
        "api": env_of(api["spec"]["template"]["spec"]["containers"][0]),
        "operator": env_of(operator["spec"]["template"]["spec"]["containers"][0]),
        "worker": env_of(pipeline["spec"]["worker"]),
    }


def test_tracing_is_off_by_default_and_logs_are_json(chart: Chart) -> None:
    for name, env in _envs(chart.render({"pipelines": [PIPELINE]})).items():
        assert env["LOG_FORMAT"] == "json", name
        assert not [key for key in env if key.startswith("OTEL_")], name


def test_tracing_sets_the_standard_variables_for_each_service(chart: Chart) -> None:
    pipeline = copy.deepcopy(PIPELINE)
    pipeline["spec"]["worker"] = {"env": [{"name": "EXTRA", "value": "kept"}]}
    envs = _envs(chart.render(TRACING | {"pipelines": [pipeline]}))
    for service, env in envs.items():
        assert env["OTEL_SERVICE_NAME"] == f"agentprod-{service}"
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=test"
    assert envs["worker"]["EXTRA"] == "kept"  # the pipeline's own env survives


def test_pipelines_without_a_worker_block_get_the_variables_too(chart: Chart) -> None:
    objects = chart.render(TRACING | {"pipelines": [PIPELINE]})
    assert all(
        env_of(p["spec"]["worker"])["OTEL_SERVICE_NAME"] == "agentprod-worker"
        for p in find(objects, "AgentPipeline")
    )


def test_tracing_without_an_endpoint_is_refused(chart: Chart) -> None:
    message = chart.error({"observability": {"tracing": {"enabled": True}}})
    assert "observability.tracing.endpoint" in message


def test_bad_protocol_and_format_are_schema_errors(chart: Chart) -> None:
    assert "protocol" in chart.error({"observability": {"tracing": {"protocol": "http/json"}}})
    assert "logFormat" in chart.error({"observability": {"logFormat": "xml"}})
