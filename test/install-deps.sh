#!/usr/bin/env bash
# Installs the Debian packages that the datapath and lab tests drive (iptables, ipset, iproute2, conntrack, nftables,
# iperf3) when one of their commands is missing. Only root can install them and only root can run those
# tests, so as another user this says what is missing and returns: the tests then skip, each saying why.
set -euo pipefail

declare -A pkg_of=(
  [iptables]=iptables [ipset]=ipset [ip]=iproute2 [conntrack]=conntrack [iperf3]=iperf3 [nft]=nftables
)
missing=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: not root, not installing ${missing[*]}: the datapath tests will skip" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
