"""Monitoring: alerts and dashboard use only exported metrics; monitors select the metrics
ports."""

from __future__ import annotations

import json
import re

from tests.chart.charts import (
    NAMESPACE,
    Chart,
    find,
    one,
)


def _exported_series() -> set[str]:
    """Every series name the API, the worker and the operator export."""
    from agentprod import metrics as app_metrics
    from agentprod_operator.scaling import metrics as operator_metrics
    from prometheus_client.metrics import MetricWrapperBase

    suffixes = {
        "counter": ["_total"],
        "gauge": [""],
        "stateset": [""],  # prometheus_client's Enum
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["", "_sum", "_count"],
    }
    names: set[str] = set()
    for module in (app_metrics, operator_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                kind = value._type
                names |= {value._name + suffix for suffix in suffixes[kind]}
    return names


def test_alerts_and_dashboard_use_exported_metrics(chart: Chart) -> None:
    objects = chart.render(
        {"metrics": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}}
    )
    rules = one(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == {
        "AgentprodResponseTimeHigh",
        "AgentprodTaskRunTimeHigh",
        "AgentprodErrorRateHigh",
        "AgentprodSubmissionsRefused",
        "AgentprodLagGrowing",
        "AgentprodTasksGivenUp",
        "AgentprodDeadLetters",
    }
    dashboard = json.loads(one(objects, "ConfigMap")["data"]["agentprod.json"])
    expressions = [rule["expr"] for rule in rules] + [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    ]
    used = {name for expr in expressions for name in re.findall(r"\bagentprod_\w+", expr)}
    exported = _exported_series()
    assert used
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def test_monitors_select_the_metrics_ports(chart: Chart) -> None:
    objects = chart.render(
        {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    )
    monitors = {m["metadata"]["name"]: m["spec"] for m in find(objects, "ServiceMonitor")}
    assert monitors["r-agentprod-api"]["endpoints"][0]["port"] == "http"
    assert monitors["r-agentprod-operator"]["endpoints"][0]["port"] == "metrics"
    for name, spec in monitors.items():
        service = one(objects, "Service", name)
        assert spec["selector"]["matchLabels"] == service["spec"]["selector"]
    pods = one(objects, "PodMonitor")["spec"]
    # The worker Deployments the operator creates (agentprod_operator/workloads.py).
    assert pods["selector"]["matchLabels"]["app.kubernetes.io/name"] == "agentprod-worker"
    assert pods["podMetricsEndpoints"][0]["port"] == "health"
    assert pods["namespaceSelector"] == {"matchNames": [NAMESPACE]}
