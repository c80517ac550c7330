package aws

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/grantcheck"
	"github.com/egressgw/egressgw/test/ec2sim"
)

const modelFile = "../../test/ec2sim/testdata/vpc.yaml"

// Nodes of the model file.
var (
	gwA1   = providers.Node{Name: "gw-a1", ProviderID: "aws:///us-east-1a/i-0a000000000000001"}
	gwA2   = providers.Node{Name: "gw-a2", ProviderID: "aws:///us-east-1a/i-0a000000000000002"}
	gwB3   = providers.Node{Name: "gw-b3", ProviderID: "aws:///us-east-1b/i-0b000000000000003"}
	worker = providers.Node{Name: "worker-a4", ProviderID: "aws:///us-east-1a/i-0c000000000000004"}
)

const (
	eniA1, eniA2, eniB3 = "eni-0a000000000000001", "eni-0a000000000000002", "eni-0b000000000000003"
	eip1, eip2          = "eipalloc-0e000000000000001", "eipalloc-0e000000000000002"
)

// testBackoff keeps retries quick; the retry logic is the same at any scale.
var testBackoff = Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}

// seenActions collects the actions every simulator of this package's tests received, for the IAM policy
// check in TestMain.
var seenActions grantcheck.Seen

type env struct {
	sim *ec2sim.Server
	url string
}

// newEnv starts a simulator of the model file. It refuses unfiltered Describe calls and, unless opts say
// otherwise, every action examples/aws/iam-policy.json does not grant, so any test that strays fails.
func newEnv(t testing.TB, opts ec2sim.Options) *env {
	t.Helper()
	m, err := ec2sim.LoadModel(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvFrom(t, m, opts)
}

// newEnvFrom is newEnv with another VPC model.
func newEnvFrom(t testing.TB, m ec2sim.Model, opts ec2sim.Options) *env {
	t.Helper()
	opts.RefuseUnfiltered = true
	if opts.AllowedActions == nil && opts.Policy == nil {
		opts.Policy = examplePolicy(t) // every provider test also proves the example policy suffices
	}
	sim, err := ec2sim.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		seenActions.Record(sim.Actions())
	})
	return &env{sim: sim, url: srv.URL}
}

// start is the usual beginning of a test: a simulator of the model file and a provider for it.
func start(t testing.TB) (*env, *Provider) {
	t.Helper()
	e := newEnv(t, ec2sim.Options{})
	return e, e.provider(t, Options{})
}

// provider returns a fresh provider (empty caches, as after a restart) talking to the simulator. Tests of
// the IP operations themselves run in the primary-interface mode, on the model's ENIs, unless opts choose
// otherwise; dedicated() gives the default mode's options.
func (e *env) provider(t testing.TB, opts Options) *Provider {
	t.Helper()
	if opts.EgressInterface == "" {
		opts.EgressInterface = InterfacePrimary
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = testBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := sdkaws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	p, err := NewFromConfig(cfg, opts, func(o *ec2.Options) { o.BaseEndpoint = sdkaws.String(e.url) })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testCluster is the cluster name of examples/aws/iam-policy.json.
const testCluster = "my-cluster"

// dedicated is the default mode's options for the test cluster.
func dedicated() Options {
	return Options{EgressInterface: InterfaceDedicated, ClusterName: testCluster}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// wantOn fails unless the simulator has addr on eni ("" for nowhere).
func (e *env) wantOn(t testing.TB, addr, eni string) ec2sim.Holder {
	t.Helper()
	h, ok := e.sim.Where(ip(addr))
	if got := h.Interface; !ok && eni != "" || ok && got != eni {
		t.Fatalf("%s: want on %q, simulator has it on %q", addr, eni, got)
	}
	return h
}

func (e *env) calls(action string) int { return e.sim.Actions()[action] }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
