package gcp

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"sigs.k8s.io/yaml"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/grantcheck"
	"github.com/egressgw/egressgw/test/gcpsim"
)

const (
	modelFile = "../../test/gcpsim/testdata/project.yaml"
	roleFile  = "../../examples/gcp/custom-role.yaml"
	project   = "egressgw-test"
	zoneA1    = "us-central1-a"
	zoneA2    = "us-central1-b"
	zoneB3    = "us-east1-b"
)

// Nodes of the model file.
var (
	gwA1   = providers.Node{Name: "gw-a1", ProviderID: "gce://egressgw-test/us-central1-a/gw-a1"}
	gwA2   = providers.Node{Name: "gw-a2", ProviderID: "gce://egressgw-test/us-central1-b/gw-a2"}
	gwB3   = providers.Node{Name: "gw-b3", ProviderID: "gce://egressgw-test/us-east1-b/gw-b3"}
	worker = providers.Node{Name: "worker-a4", ProviderID: "gce://egressgw-test/us-central1-a/worker-a4"}
)

// testBackoff and testPoll keep retries and polls quick; the logic is the same at any scale.
var (
	testBackoff = Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}
	testPoll    = 20 * time.Millisecond
)

// seenPermissions collects the permissions every simulator of this package's tests needed, for the role
// check in TestMain.
var seenPermissions grantcheck.Seen

type env struct {
	sim *gcpsim.Server
	url string
}

// newEnv starts a simulator of the model file, changed by tweaks. Unless opts say otherwise, callers have exactly the
// permissions of examples/gcp/custom-role.yaml, so that any test that strays fails.
func newEnv(t testing.TB, opts gcpsim.Options, tweaks ...func(*gcpsim.Model)) *env {
	t.Helper()
	m, err := gcpsim.LoadModel(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(&m)
	}
	if opts.AllowedPermissions == nil && opts.Callers == nil {
		opts.AllowedPermissions = rolePermissions(t)
	}
	sim, err := gcpsim.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		seenPermissions.Record(sim.Permissions())
	})
	return &env{sim: sim, url: srv.URL}
}

// start is the usual beginning of a test: a simulator of the model file and a provider for it.
func start(t testing.TB) (*env, *Provider) {
	t.Helper()
	e := newEnv(t, gcpsim.Options{})
	return e, e.provider(t, Options{})
}

// provider returns a fresh provider (empty caches, as after a restart) talking to the simulator through
// the real compute REST client, with a static OAuth token over plain HTTP.
func (e *env) provider(t testing.TB, opts Options) *Provider {
	t.Helper()
	if opts.Project == "" {
		opts.Project = project
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = testBackoff
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = testPoll
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := New(context.Background(), opts, option.WithEndpoint(e.url),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "token-manager"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// role is the custom role file's shape.
type role struct {
	Title               string   `json:"title"`
	Description         string   `json:"description"`
	Stage               string   `json:"stage"`
	IncludedPermissions []string `json:"includedPermissions"`
}

func loadRole() (role, error) {
	var r role
	data, err := os.ReadFile(roleFile)
	if err == nil {
		err = yaml.UnmarshalStrict(data, &r)
	}
	return r, err
}

func rolePermissions(t testing.TB) []string {
	r, err := loadRole()
	if err != nil {
		t.Fatalf("%s: %v", roleFile, err)
	}
	return r.IncludedPermissions
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// wantOn fails unless the simulator has addr on instance ("" for nowhere).
func (e *env) wantOn(t testing.TB, addr, instance string) {
	t.Helper()
	h, ok := e.sim.Where(ip(addr))
	if !ok && instance != "" || ok && h.Instance != instance {
		t.Fatalf("%s: want on %q, simulator has it on %q", addr, instance, h.Instance)
	}
}

// aliases is a NIC's alias ranges as "range[@rangeName]" strings.
func (e *env) aliases(zone, name string) string {
	var out []string
	for _, a := range e.sim.Aliases(zone, name, "nic0") {
		s := a.IPCIDRRange
		if a.SubnetworkRangeName != "" {
			s += "@" + a.SubnetworkRangeName
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func (e *env) calls(method string) int { return e.sim.Calls()[method] }

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

// concurrently runs op for every assignment at once, as the manager's workers do, and returns the errors
// in order.
func concurrently(ctx context.Context, op func(context.Context, providers.Node, providers.Assignment) error, node providers.Node, as []providers.Assignment) []error {
	errs := make([]error, len(as))
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = op(ctx, node, a)
		}()
	}
	wg.Wait()
	return errs
}
