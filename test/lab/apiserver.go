package lab

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/netlab"
)

var quietOnce sync.Once

// startAPIServer starts kube-apiserver and etcd with egressgw's CRDs, and writes the admin kubeconfig.
func (l *Lab) startAPIServer(context.Context) error {
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	// envtest's processes inherit the lab's marker from the environment of this process, set only
	// while they start (another lab in the same process has its own).
	prev, had := os.LookupEnv(MarkerEnv)
	if err := os.Setenv(MarkerEnv, l.cfg.StateDir); err != nil {
		return err
	}
	defer func() {
		if had {
			_ = os.Setenv(MarkerEnv, prev)
		} else {
			_ = os.Unsetenv(MarkerEnv)
		}
	}()
	l.env = &ctrlenvtest.Environment{
		BinaryAssetsDirectory: l.cfg.Assets,
		CRDDirectoryPaths:     []string{filepath.Join(l.cfg.RepoRoot, "charts", "egressgw", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	// The cluster's service range, which envtest would otherwise put on 10.0.0.0/24, the lab's node subnet.
	l.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", ServiceCIDR.String())
	cfg, err := l.env.Start()
	if err != nil {
		return errors.Join(fmt.Errorf("start kube-apiserver and etcd from %s: %w", l.cfg.Assets, err), l.env.Stop())
	}
	l.onClose(l.env.Stop)
	scheme, err := envtest.Scheme()
	if err != nil {
		return err
	}
	if l.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	l.AdminKubeconfig, err = l.kubeconfig("admin", "lab-admin", "system:masters")
	return err
}

// kubeconfig writes a kubeconfig for a new user of the API server into the state folder.
// The lab's components run as members of system:masters until the chart's RBAC runs in the lab.
func (l *Lab) kubeconfig(file, user string, groups ...string) (string, error) {
	u, err := l.env.AddUser(ctrlenvtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("user %s: %w", user, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := l.path(file + ".kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// apiHost is the API server's address as the kubeconfigs name it (host:port on the loopback).
func (l *Lab) apiHost() (string, error) {
	u, err := url.Parse(l.env.Config.Host)
	if err != nil {
		return "", err
	}
	return u.Host, nil
}

// reachAPIServer makes the API server, which listens on the host's loopback, answer at the same address
// inside ns: a listener opened in ns forwards each connection to the host's. The server's certificate
// names that address, so TLS verifies as usual.
func (l *Lab) reachAPIServer(ns *netlab.Namespace) error {
	host, err := l.apiHost()
	if err != nil {
		return err
	}
	return l.forward(ns, host, host)
}

// forward listens on addr inside ns and copies every connection to target, dialled from the host.
func (l *Lab) forward(ns *netlab.Namespace, addr, target string) error {
	ln, err := ns.Forward(addr, target)
	if err != nil {
		return err
	}
	l.onClose(ln.Close)
	return nil
}

// restConfig is the admin's client configuration, for watches the lab runs itself.
func (l *Lab) restConfig() *rest.Config { return rest.CopyConfig(l.env.Config) }
