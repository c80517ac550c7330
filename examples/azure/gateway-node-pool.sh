#!/bin/sh
# A VirtualMachines node pool for gateways (the NICs of Uniform scale set instances cannot be written),
# labelled for EgressGateways and tainted so that ordinary pods stay away (the agent tolerates every taint).
set -eu
az aks nodepool add -g my-rg --cluster-name my-cluster -n egressgw --vm-set-type VirtualMachines \
  --node-count 2 --zones 1 2 --labels egressgw.io/gateway=true --node-taints egressgw.io/gateway=true:NoSchedule
