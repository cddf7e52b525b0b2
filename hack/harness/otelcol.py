"""A real OpenTelemetry Collector for the tracing tests: OTLP in (HTTP and gRPC on 127.0.0.1),
every span out to a JSON-lines file (the contrib file exporter) the tests read back.

The binary is built once from the Go module proxy by ``hack/build-otelcol.sh`` (the official
builder, ~3 min on 2 cores) and cached under ``$AGENTPROD_CACHE/otelcol/<version>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import paths
from harness.apps import free_port
from harness.processes import ServiceError, file_lock, log_tail, port_open

HOST = "127.0.0.1"
BUILD_SCRIPT = paths.repo_root() / "hack" / "build-otelcol.sh"


def ensure_otelcol() -> Path:
    """Build (once) or reuse the cached collector; returns the binary's path."""
    env = os.environ | {"AGENTPROD_CACHE": str(paths.cache_dir())}
    with file_lock(paths.cache_dir() / "otelcol.lock"):  # a second caller waits, then reuses
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise ServiceError(f"building the OpenTelemetry Collector failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Span:
    """One exported span, as the tests look at it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str
    attributes: dict[str, Any]
    status: str


def _value(raw: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in raw:
            return raw[key]
    if "intValue" in raw:
        return int(raw["intValue"])
    return raw


def parse_spans(lines: Iterator[str]) -> list[Span]:
    """The spans of the file exporter's OTLP JSON lines (one ExportTraceServiceRequest a line)."""
    spans: list[Span] = []
    for line in lines:
        if not line.strip():
            continue
        for resource in json.loads(line).get("resourceSpans", []):
            resource_attributes = {
                item["key"]: _value(item["value"])
                for item in resource.get("resource", {}).get("attributes", [])
            }
            service = str(resource_attributes.get("service.name", ""))
            for scope in resource.get("scopeSpans", []):
                for raw in scope.get("spans", []):
                    spans.append(
                        Span(
                            trace_id=raw["traceId"],
                            span_id=raw["spanId"],
                            parent_span_id=raw.get("parentSpanId", ""),
                            name=raw["name"],
                            kind=str(raw.get("kind", "")),
                            service=service,
                            attributes={
                                item["key"]: _value(item["value"])
                                for item in raw.get("attributes", [])
                            },
                            status=str(raw.get("status", {}).get("code", "")),
                        )
                    )
    return spans


class Collector:
    """``otelcol`` rooted at ``home``: its config, log and the exported spans file."""

    def __init__(self, *, home: Path, binary: Path) -> None:
        self.home = home
        self.binary = binary
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.spans_path = home / "spans.jsonl"
        self.log_path = home / "otelcol.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def http_endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT with the (default) http/protobuf protocol."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{HOST}:{self.grpc_port}"

    def start(self, *, timeout: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "config.yaml"
        config.write_text(
            json.dumps(  # JSON is YAML: no YAML writer needed
                {
                    "receivers": {
                        "otlp": {
                            "protocols": {
                                "http": {"endpoint": f"{HOST}:{self.http_port}"},
                                "grpc": {"endpoint": f"{HOST}:{self.grpc_port}"},
                            }
                        }
                    },
                    "exporters": {
                        "file": {"path": str(self.spans_path), "flush_interval": "100ms"}
                    },
                    "service": {
                        # No own metrics server (its default :8888 would collide across runs).
                        "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
                        "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}},
                    },
                },
                indent=1,
            )
        )
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(self.binary), f"--config=file:{config}"], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not (
            port_open(host=HOST, port=self.http_port) and port_open(host=HOST, port=self.grpc_port)
        ):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise ServiceError(f"otelcol did not start:\n{log_tail(path=self.log_path)}")
            time.sleep(0.1)

    def spans(self) -> list[Span]:
        if not self.spans_path.exists():
            return []
        with self.spans_path.open() as lines:
            return parse_spans(iter(lines))

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
