"""Chart tests: `helm template` and `helm lint` only, no cluster (tests/e2e/test_chart.py has
the server-side ones)."""

from __future__ import annotations

import pytest
from harness.kubernetes import ensure_binaries

from tests.chart.charts import Chart


@pytest.fixture(scope="session")
def chart() -> Chart:
    return Chart(ensure_binaries() / "helm")
