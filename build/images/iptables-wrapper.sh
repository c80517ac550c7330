#!/bin/sh
# egressgw's iptables, ip6tables (and their -save and -restore) in the agent image: the image carries
# both backends, and the one to use is the one the node already uses, or rules would land in tables the
# node's kubelet and kube-proxy never read. The choice is made once per container and kept in
# /run/egressgw-iptables-mode. Signs, in order: the KUBE-IPTABLES-HINT chain the kubelet creates in the
# mangle table of the backend it uses; else the backend that holds more rules; else nft.
set -e
mode_file=/run/egressgw-iptables-mode
mode=$(cat "$mode_file" 2>/dev/null || true)
count() { "$@" 2>/dev/null | grep -c '^-' || true; }
if [ "$mode" != nft ] && [ "$mode" != legacy ]; then
	if iptables-nft-save -t mangle 2>/dev/null | grep -q '^:KUBE-IPTABLES-HINT'; then
		mode=nft
	elif iptables-legacy-save -t mangle 2>/dev/null | grep -q '^:KUBE-IPTABLES-HINT'; then
		mode=legacy
	elif [ "$(count iptables-legacy-save)" -gt "$(count iptables-nft-save)" ]; then
		mode=legacy
	else
		mode=nft
	fi
	echo "$mode" >"$mode_file" 2>/dev/null || true
fi
name=${0##*/}
case "$name" in
*-save) exec "/usr/sbin/${name%-save}-$mode-save" "$@" ;;
*-restore) exec "/usr/sbin/${name%-restore}-$mode-restore" "$@" ;;
*) exec "/usr/sbin/$name-$mode" "$@" ;;
esac
