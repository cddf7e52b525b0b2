#!/usr/bin/env bash
# Build (once) an OpenTelemetry Collector with the official builder (ocb) from the Go module
# proxy: the OTLP receiver (gRPC + HTTP) and the file exporter (OTLP JSON lines), which is what
# the tracing tests read spans back from. Output: $AGENTPROD_CACHE/otelcol/<version>/otelcol.
# Re-running reuses the binary; the last stdout line is its path.
set -euo pipefail

OTELCOL_VERSION=${OTELCOL_VERSION:-0.165.0}
CACHE=${AGENTPROD_CACHE:-$HOME/.cache/agentprod}
OUT="$CACHE/otelcol/$OTELCOL_VERSION"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=auto
say() { echo "build-otelcol: $*" >&2; }

if [ ! -x "$OUT/otelcol" ]; then
  mkdir -p "$OUT"
  work=$(mktemp -d "$OUT/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  say "building the OpenTelemetry Collector v$OTELCOL_VERSION (otlp receiver, file exporter)"
  GOBIN="$work/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION"
  cat > "$work/builder.yaml" <<YAML
dist:
  name: otelcol
  description: agentprod's test collector (OTLP in, OTLP JSON file out)
  output_path: $work/dist
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$OTELCOL_VERSION
exporters:
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter v$OTELCOL_VERSION
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter v$OTELCOL_VERSION
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor v$OTELCOL_VERSION
YAML
  # The builder writes the sources; the module graph is made here with `go mod tidy -e`,
  # because some components' *test* dependencies are not served by every module proxy (the
  # build needs none of them) and the builder's own tidy stops at the first.
  (cd "$work" && "$work/bin/builder" --config=builder.yaml --skip-get-modules \
    --skip-compilation >&2)
  (
    cd "$work/dist"
    go mod init local/otelcol >/dev/null 2>&1
    sed -n 's/^ *- gomod: \(.*\) \(v.*\)$/\1@\2/p' "$work/builder.yaml" | while read -r mod; do
      go mod edit -require="$mod"
    done
    go mod edit -require="go.opentelemetry.io/collector/otelcol@v$OTELCOL_VERSION"
    go mod tidy -e >&2
    go build -trimpath -ldflags "-s -w" -o otelcol . >&2
  )
  mv "$work/dist/otelcol" "$OUT/otelcol.tmp" && mv "$OUT/otelcol.tmp" "$OUT/otelcol"
fi
echo "$OUT/otelcol"
