package ec2sim

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const tagPolicy = `{"Statement": [
 {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
 {"Effect": "Allow", "Action": ["ec2:AssignPrivateIpAddresses"], "Resource": "arn:aws:ec2:*:*:network-interface/*",
  "Condition": {"StringLike": {"ec2:ResourceTag/team": "pay*"}}},
 {"Effect": "Deny", "Action": "ec2:AssignPrivateIpAddresses", "Resource": "arn:aws:ec2:*:*:network-interface/eni-0a000000000000002"},
 {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*"}]}`

func TestPolicyResourcesConditionsAndDeny(t *testing.T) {
	p, err := ParsePolicy([]byte(tagPolicy))
	must(t, err)
	_, c, _ := startSim(t, Options{Policy: p})
	ctx := context.Background()
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{gwA1}})
	must(t, err)
	wantCode(t, assign(c, eniA1, false, "10.0.1.50"), CodeUnauthorizedOperation, http.StatusForbidden) // no team tag yet
	for _, id := range []string{eniA1, eniA2} {
		_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}})
		must(t, err)
	}
	must(t, assign(c, eniA1, false, "10.0.1.50"))
	err = assign(c, eniA2, false, "10.0.1.51")
	wantCode(t, err, CodeUnauthorizedOperation, http.StatusForbidden) // the Deny wins over the tag
	if !strings.Contains(err.Error(), "network-interface/eni-0a000000000000002") {
		t.Fatalf("the refusal names the resource: %v", err)
	}
	wantCode(t, assign(c, "eni-0dead000000000001", false, "10.0.1.52"), CodeENINotFound, http.StatusBadRequest)
	if _, err := ParsePolicy([]byte(`{"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {"NumericLessThan": {"x": "1"}}}]}`)); err == nil {
		t.Fatal("an operator the simulator cannot evaluate was accepted")
	}
}
