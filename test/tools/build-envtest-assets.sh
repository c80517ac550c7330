#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go modules pinned in this folder's go.mod into a cache folder
# outside the repository, named after their versions, and prints that folder (for KUBEBUILDER_ASSETS).
# A second run finds the binaries there and returns at once; a clean clone on the same machine reuses them.
set -euo pipefail
cd "$(dirname "$0")"

k8s=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
gover=$(go env GOVERSION)
cache=${EGRESSGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/egressgw}
dir="$cache/envtest/kube-apiserver-$k8s-etcd-$etcd-$gover"

if [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" ]]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The apiserver reports its version from these variables; envtest and clients read it.
major=${k8s#v}; major=${major%%.*}
minor=${k8s#v*.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$k8s -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"

echo "building etcd $etcd and kube-apiserver $k8s into $dir (first time only: about 10 minutes on 2 cores)" >&2
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
mv "$tmp/etcd" "$tmp/kube-apiserver" "$dir/"
echo "$dir"
