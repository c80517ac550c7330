// Package envtest starts a real kube-apiserver and etcd for tests, with the egressgw CRDs installed.
//
// The binaries come from test/tools (built from Go modules into a cache outside the repository);
// `make test` points KUBEBUILDER_ASSETS at them. Run a single test by hand with
//
//	export KUBEBUILDER_ASSETS=$(make -s envtest-assets)
//	go test ./api/... -run TestCRD
package envtest

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/go-logr/logr"

	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// Env is a running API server with a client for the egressgw and built-in types.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *k8sruntime.Scheme
	te     *ctrlenvtest.Environment
}

// AddUser returns the configuration of a new user of the API server, authenticated by a client
// certificate, with no permissions but those RBAC gives its name or groups: for tests of what a component
// does when a permission is missing.
func (e *Env) AddUser(t testing.TB, name string, groups ...string) *rest.Config {
	t.Helper()
	u, err := e.te.AddUser(ctrlenvtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	return u.Config()
}

// RepoRoot is the repository's top folder, found from this file's location so tests in any package
// can reach the CRDs and examples.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var quietOnce sync.Once

// Start starts an API server for the test and stops it when the test ends. It skips the test, saying
// why, when KUBEBUILDER_ASSETS is not set, and fails it when the server cannot start.
func Start(t testing.TB) *Env {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(make -s envtest-assets)")
	}
	// envtest logs through controller-runtime's global logger, which complains loudly when unset; its
	// start-up chatter is of no use in test output.
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	te := &ctrlenvtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "charts", "egressgw", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := te.Start()
	if err != nil {
		// Start may fail after the processes are up (a CRD the server refuses): stop them, or they outlive
		// the test.
		_ = te.Stop()
		t.Fatalf("start kube-apiserver and etcd from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	scheme := NewScheme(t)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, te: te}
}

// NewScheme returns a scheme with the built-in Kubernetes types and the egressgw types.
func NewScheme(t testing.TB) *k8sruntime.Scheme {
	t.Helper()
	s, err := Scheme()
	if err != nil {
		t.Fatalf("scheme: %v", err)
	}
	return s
}

// Scheme is NewScheme for code outside a test (the lab).
func Scheme() (*k8sruntime.Scheme, error) {
	s := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{clientgoscheme.AddToScheme, egressgwv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
