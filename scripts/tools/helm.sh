#!/usr/bin/env bash
# Installs the chart's check tools into .cache/ (pinned; a warm run does nothing):
#   helm and helm-docs, built from the Go module proxy, and the CRD YAMLs of
#   prometheus-operator and KEDA, taken from their Go modules.
# Prints nothing when everything is already there.
set -euo pipefail

HELM_VERSION=v3.22.0
HELM_DOCS_VERSION=v1.14.2
PROMETHEUS_OPERATOR_VERSION=v0.90.1
KEDA_VERSION=v2.21.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="$root/.cache"
bin="$cache/tools/bin"
crds="$cache/crds"

export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOPATH="$cache/go/path"
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -trimpath" CGO_ENABLED=0

json_field() { "$root/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# go_tool NAME PACKAGE VERSION: build one binary into .cache/tools/bin, keyed by version.
go_tool() {
    local name="$1" pkg="$2" version="$3"
    local stamp="$bin/.$name@$version"
    [[ -x "$bin/$name" && -e "$stamp" ]] && return
    echo "tools: building $name $version from the Go module proxy" >&2
    local ldflags="-s -w"
    if [[ "$name" == helm ]]; then
        # What helm's own Makefile stamps in: its version, and the Kubernetes version of its
        # client-go as the default --kube-version (otherwise 1.20).
        local gomod k8s_minor
        gomod="$(cd "$cache" && go mod download -json "${pkg%/cmd/helm}@$version" | json_field GoMod)"
        k8s_minor="$(sed -n 's|^\s*k8s.io/client-go v0\.\([0-9]*\)\..*|\1|p' "$gomod")"
        ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version"
        for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
            ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
        done
    fi
    GOBIN="$bin" go install -ldflags "$ldflags" "$pkg@$version"
    rm -f "$bin/.$name@"*
    touch "$stamp"
}

# crd_files NAME MODULE VERSION DIR: copy a module's CRD YAMLs into .cache/crds/NAME-VERSION.
crd_files() {
    local name="$1" module="$2" version="$3" dir="$4"
    local dest="$crds/$name-$version"
    [[ -e "$dest/.complete" ]] && return
    echo "tools: fetching $name $version CRDs from the Go module proxy" >&2
    local src
    src="$(cd "$cache" && go mod download -json "$module@$version" | json_field Dir)"
    rm -rf "$dest" && mkdir -p "$dest"
    cp "$src/$dir"/*.yaml "$dest/"
    chmod -R u+w "$dest"
    touch "$dest/.complete"
}

mkdir -p "$bin" "$crds"
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
go_tool helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION"
crd_files prometheus-operator github.com/prometheus-operator/prometheus-operator \
    "$PROMETHEUS_OPERATOR_VERSION" example/prometheus-operator-crd
crd_files keda github.com/kedacore/keda/v2 "$KEDA_VERSION" config/crd/bases
