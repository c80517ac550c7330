package aws

import (
	"errors"
	"testing"

	"github.com/egressgw/egressgw/providers"
)

func TestParseProviderID(t *testing.T) {
	good := map[string]instanceRef{
		"aws:///us-east-1a/i-0123456789abcdef0": {zone: "us-east-1a", id: "i-0123456789abcdef0"},
		"aws://eu-west-1b/i-0123456789abcdef0":  {zone: "eu-west-1b", id: "i-0123456789abcdef0"},
		"aws:///i-1234abcd":                     {id: "i-1234abcd"},
	}
	for in, want := range good {
		got, err := parseProviderID(in)
		if err != nil || got != want {
			t.Errorf("%q: got %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := []string{
		"", "gce://project/zone/vm", "aws:///us-east-1a/fargate-ip-10-0-1-1.ec2.internal",
		"aws:///us-east-1a/i-0123", "aws:///us-east-1a/i-0123456789ABCDEF0", "aws:///a/b/i-0123456789abcdef0",
		"aws:////i-0123456789abcdef0", "aws:///us-east-1a/",
	}
	for _, in := range bad {
		if _, err := parseProviderID(in); !errors.Is(err, providers.ErrUnsupportedNode) {
			t.Errorf("%q: want ErrUnsupportedNode, got %v", in, err)
		}
	}
}
