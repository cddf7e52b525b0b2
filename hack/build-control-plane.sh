#!/usr/bin/env bash
# Build the local Kubernetes control plane from the Go module proxy and cache it, keyed by version:
#   kube-apiserver, kube-controller-manager, kubectl  (k8s.io/kubernetes, via a wrapper module)
#   kubelet, kube-scheduler, kube-proxy                (the same wrapper; the real node)
#   etcd                                               (go.etcd.io/etcd/server/v3, own wrapper)
#   helm                                               (go install helm.sh/helm/v3/cmd/helm)
#   coredns                                            (own main: only the plugins we use)
# Output: $AGENTPROD_CACHE/control-plane/<k8s>-<etcd>-<helm>/bin. Re-running reuses what exists;
# `$0 control-plane` builds only what a node-less control plane needs.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-3.21.4}
COREDNS_VERSION=${COREDNS_VERSION:-1.14.7}
WHAT=${1:-all}
CACHE=${AGENTPROD_CACHE:-$HOME/.cache/agentprod}
OUT="$CACHE/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
BIN="$OUT/bin"
mkdir -p "$BIN"
minor=${K8S_VERSION#1.}; minor=${minor%%.*}
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=auto

have() { [ -x "$BIN/$1" ]; }
WORK_DIRS=()
trap 'rm -rf "${WORK_DIRS[@]}"' EXIT
say() { echo "build-control-plane: $*" >&2; }

k8s_wrapper() {
  # A wrapper folder of its own: a concurrent run's cleanup must not pull it away.
  work=$(mktemp -d "$OUT/k8s-wrapper.XXXXXX"); WORK_DIRS+=("$work"); cd "$work"
  staging="0.${K8S_VERSION#1.}"
  go mod init local/k8sbin >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # k8s.io/kubernetes maps its staging modules with replace lines that only count in the main
  # module: derive the same set from its published go.mod.
  for module in $(sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*|\1|p' "$gomod"); do
    go mod edit -replace="$module=$module@v$staging"
  done
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION" -go=1.24.0 -godebug=default=go1.24
  {
    printf '//go:build tools\npackage tools\n\nimport (\n'
    for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > tools.go
  go mod tidy
}

k8s_build() {
  local ldflags="-s -w" pkgs=()
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  k8s_wrapper "$@"
  go build -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}"
}

if ! have kube-apiserver || ! have kube-controller-manager || ! have kubectl; then
  say "building kube-apiserver, kube-controller-manager, kubectl v$K8S_VERSION (10-25 min on 2 cores)"
  k8s_build kube-apiserver kube-controller-manager kubectl
fi

if [ "$WHAT" = all ] && { ! have kubelet || ! have kube-scheduler || ! have kube-proxy; }; then
  say "building kubelet, kube-scheduler, kube-proxy v$K8S_VERSION (1-3 min on a warm Go cache)"
  k8s_build kubelet kube-scheduler kube-proxy
fi

if ! have etcd; then
  say "building etcd v$ETCD_VERSION"
  work=$(mktemp -d "$OUT/etcd-wrapper.XXXXXX"); WORK_DIRS+=("$work"); cd "$work"
  go mod init local/etcdbin >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  printf '//go:build tools\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
fi

if ! have helm; then
  say "installing helm v$HELM_VERSION"
  GOBIN="$BIN" go install -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
fi

if [ "$WHAT" = all ] && ! have coredns; then
  say "building coredns v$COREDNS_VERSION (bind, errors, health, ready, cache, kubernetes)"
  work=$(mktemp -d "$OUT/coredns-wrapper.XXXXXX"); WORK_DIRS+=("$work"); cd "$work"
  go mod init local/corednsbin >/dev/null 2>&1
  go mod edit -require="github.com/coredns/coredns@v$COREDNS_VERSION"
  # CoreDNS' own main compiles in every plugin (cloud DNS providers included); this one takes
  # the few a cluster DNS needs, in CoreDNS' plugin order (plugin.cfg).
  cat > main.go <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes"}
}

func main() { coremain.Run() }
GO
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$BIN/coredns" .
fi

echo "$BIN"
