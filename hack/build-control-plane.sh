#!/usr/bin/env bash
# Build the local Kubernetes control plane from the Go module proxy and cache it, keyed by version:
#   kube-apiserver, kube-controller-manager, kubectl  (k8s.io/kubernetes, via a wrapper module)
#   etcd                                               (go.etcd.io/etcd/server/v3, own wrapper)
#   helm                                               (go install helm.sh/helm/v3/cmd/helm)
# Output: $AGENTPROD_CACHE/control-plane/<k8s>-<etcd>-<helm>/bin. Re-running reuses what exists.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-3.21.4}
CACHE=${AGENTPROD_CACHE:-$HOME/.cache/agentprod}
OUT="$CACHE/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
BIN="$OUT/bin"
mkdir -p "$BIN"
minor=${K8S_VERSION#1.}; minor=${minor%%.*}
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=auto

have() { [ -x "$BIN/$1" ]; }
say() { echo "build-control-plane: $*" >&2; }

if ! have kube-apiserver || ! have kube-controller-manager || ! have kubectl; then
  say "building kube-apiserver, kube-controller-manager, kubectl v$K8S_VERSION (10-25 min on 2 cores)"
  work="$OUT/k8s-wrapper"; rm -rf "$work"; mkdir -p "$work"; cd "$work"
  staging="0.${K8S_VERSION#1.}"
  go mod init local/k8sbin >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # k8s.io/kubernetes maps its staging modules with replace lines that only count in the main
  # module: derive the same set from its published go.mod.
  for module in $(sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*|\1|p' "$gomod"); do
    go mod edit -replace="$module=$module@v$staging"
  done
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION" -go=1.24.0 -godebug=default=go1.24
  printf '//go:build tools\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' > tools.go
  go mod tidy
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  go build -trimpath -ldflags "$ldflags" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
fi

if ! have etcd; then
  say "building etcd v$ETCD_VERSION"
  work="$OUT/etcd-wrapper"; rm -rf "$work"; mkdir -p "$work"; cd "$work"
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

rm -rf "$OUT/k8s-wrapper" "$OUT/etcd-wrapper"
echo "$BIN"
