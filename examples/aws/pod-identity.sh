#!/bin/sh
# The manager's IAM role through EKS Pod Identity (needs the eks-pod-identity-agent add-on): the
# association names the ServiceAccount, so the chart needs no identity value; set aws.region.
set -eu
CLUSTER=my-cluster REGION=us-east-1 NAMESPACE=egressgw-system SA=egressgw-manager
cat >/tmp/egressgw-trust.json <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
  "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
JSON
ROLE_ARN=$(aws iam create-role --role-name egressgw-manager --assume-role-policy-document file:///tmp/egressgw-trust.json --query Role.Arn --output text)
aws iam put-role-policy --role-name egressgw-manager --policy-name egressgw-manager --policy-document file://iam-policy.json
aws eks create-pod-identity-association --cluster-name "$CLUSTER" --region "$REGION" \
  --namespace "$NAMESPACE" --service-account "$SA" --role-arn "$ROLE_ARN"
