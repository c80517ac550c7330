package aws

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/ec2sim"
)

// isolateFromHost points the SDK's default chain at nothing on this machine (no shared files, no
// instance metadata), so only what a test sets in the environment counts.
func isolateFromHost(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, v := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(v, "")
	}
}

// TestDefaultChainAndEndpointFromEnvironment builds the provider exactly as the manager will (New, the
// SDK's default chain) and points it at the simulator only through AWS_ENDPOINT_URL_EC2.
func TestDefaultChainAndEndpointFromEnvironment(t *testing.T) {
	e := newEnv(t, ec2sim.Options{})
	isolateFromHost(t)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_ENDPOINT_URL_EC2", e.url)
	p, err := New(context.Background(), Options{ClusterName: testCluster, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	info, err := p.EnsureAttachment(context.Background(), gwA1)
	must(t, err)
	if h, _ := e.sim.Where(info.PrimaryIP); !info.Dedicated || info.Interface == eniA1 || h.Interface != info.Interface || h.Instance != info.Instance {
		t.Fatalf("the default mode gives the gateway a dedicated interface, through the environment's endpoint: %+v (simulator: %+v)", info, h)
	}
}

func TestOptionsRefuseWhatCannotWork(t *testing.T) {
	cases := []struct {
		opts Options
		want string
	}{
		{Options{}, "ClusterName"},
		{Options{EgressInterface: "secondary", ClusterName: "c"}, `EgressInterface (--aws-egress-interface) "secondary"`},
		{Options{EgressInterface: InterfacePrimary, EgressSubnetTags: map[string]string{"egress": "yes"}}, "dedicated egress interface only"},
		{Options{ClusterName: "c", EgressSubnets: map[string]string{"us-east-1a": "sn-1"}}, `EgressSubnets[us-east-1a] = "sn-1"`},
	}
	for _, c := range cases {
		if err := c.opts.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want an error naming %q, got %v", c.opts, c.want, err)
		}
	}
	if err := (Options{EgressInterface: InterfacePrimary}).Validate(); err != nil {
		t.Errorf("the primary mode needs no cluster name: %v", err)
	}
}

func TestNoRegionIsAClearError(t *testing.T) {
	isolateFromHost(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err := New(context.Background(), Options{})
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Fatalf("want an error naming AWS_REGION, got %v", err)
	}
}
