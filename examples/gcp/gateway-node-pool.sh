#!/bin/sh
# A node pool for gateways, labelled for EgressGateways and tainted so that ordinary pods stay away (the
# agent tolerates every taint); Workload Identity on for the pool that runs the manager.
set -eu
gcloud container node-pools create egress-gateways --cluster=my-cluster --region=europe-west1 \
  --num-nodes=1 --node-locations=europe-west1-b,europe-west1-c \
  --node-labels=egressgw.io/gateway=true --node-taints=egressgw.io/gateway=true:NoSchedule \
  --workload-metadata=GKE_METADATA
# The VXLAN port between nodes (and the manager's probes of the agents) inside the VPC:
gcloud compute firewall-rules create egressgw-nodes --network=my-vpc --direction=INGRESS \
  --source-tags=gke-my-cluster-node --target-tags=gke-my-cluster-node --allow=udp:4866,tcp:9561
