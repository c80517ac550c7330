#!/bin/sh
# The manager's IAM role through IRSA: a role trusted by the cluster's OIDC provider for the manager's
# ServiceAccount, with examples/aws/iam-policy.json. Then: --set identity.awsRoleARN=<the role's ARN>.
set -eu
CLUSTER=my-cluster REGION=us-east-1 NAMESPACE=egressgw-system SA=egressgw-manager
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
OIDC=$(aws eks describe-cluster --name "$CLUSTER" --region "$REGION" --query cluster.identity.oidc.issuer --output text | sed 's|^https://||')
cat >/tmp/egressgw-trust.json <<JSON
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::$ACCOUNT:oidc-provider/$OIDC"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"$OIDC:sub": "system:serviceaccount:$NAMESPACE:$SA", "$OIDC:aud": "sts.amazonaws.com"}}}]}
JSON
aws iam create-role --role-name egressgw-manager --assume-role-policy-document file:///tmp/egressgw-trust.json
aws iam put-role-policy --role-name egressgw-manager --policy-name egressgw-manager --policy-document file://iam-policy.json
echo "identity.awsRoleARN=arn:aws:iam::$ACCOUNT:role/egressgw-manager"
