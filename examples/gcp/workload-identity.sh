#!/bin/sh
# Give the egressgw manager its role through GKE Workload Identity (the cluster and the manager's node pool
# must have Workload Identity enabled; the manager must not run on the host network). Set the variables,
# then run the commands of ONE of the two ways below.
set -eu
PROJECT_ID=my-project                 # project of the gateway nodes
PROJECT_NUMBER=$(gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')
NAMESPACE=egressgw-system
KSA=egressgw-manager                   # the manager's Kubernetes ServiceAccount

gcloud iam roles create egressgwManager --project="$PROJECT_ID" --file=custom-role.yaml

# Way 1: grant the role to the Kubernetes ServiceAccount itself (Workload Identity Federation for GKE).
gcloud projects add-iam-policy-binding "$PROJECT_ID" \
  --role="projects/$PROJECT_ID/roles/egressgwManager" \
  --member="principal://iam.googleapis.com/projects/$PROJECT_NUMBER/locations/global/workloadIdentityPools/$PROJECT_ID.svc.id.goog/subject/ns/$NAMESPACE/sa/$KSA"

# Way 2: through a Google service account that the Kubernetes ServiceAccount may impersonate.
# GSA=egressgw-manager
# gcloud iam service-accounts create "$GSA" --project="$PROJECT_ID"
# gcloud projects add-iam-policy-binding "$PROJECT_ID" \
#   --role="projects/$PROJECT_ID/roles/egressgwManager" \
#   --member="serviceAccount:$GSA@$PROJECT_ID.iam.gserviceaccount.com"
# gcloud iam service-accounts add-iam-policy-binding "$GSA@$PROJECT_ID.iam.gserviceaccount.com" \
#   --role=roles/iam.workloadIdentityUser \
#   --member="serviceAccount:$PROJECT_ID.svc.id.goog[$NAMESPACE/$KSA]"
# kubectl annotate serviceaccount -n "$NAMESPACE" "$KSA" \
#   iam.gke.io/gcp-service-account="$GSA@$PROJECT_ID.iam.gserviceaccount.com"
