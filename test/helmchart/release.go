package helmchart

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Releases installs, upgrades and uninstalls the chart in a real API server through helm's action
// package, as `helm install/upgrade/uninstall --kubeconfig FILE --namespace NS` do: the release stored as
// a Secret in the namespace, hooks run and waited for by helm's own kube client.
type Releases struct {
	cfg       *action.Configuration
	namespace string
	chart     *chart.Chart
}

// NewReleases connects to the API server of kubeconfig; log receives helm's debug lines (nil: none).
func NewReleases(kubeconfig, namespace string, log func(format string, args ...any)) (*Releases, error) {
	if log == nil {
		log = func(string, ...any) {}
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, namespace, "secret", log); err != nil {
		return nil, fmt.Errorf("helm configuration for %s: %w", kubeconfig, err)
	}
	c, err := Load("")
	if err != nil {
		return nil, err
	}
	return &Releases{cfg: cfg, namespace: namespace, chart: c}, nil
}

// Install is `helm install NAME charts/egressgw` with vals (the chart's crds/ first, as helm does).
func (r *Releases) Install(ctx context.Context, name string, vals map[string]any) (*Rendered, error) {
	in := action.NewInstall(r.cfg)
	in.ReleaseName, in.Namespace = name, r.namespace
	rel, err := in.RunWithContext(ctx, r.chart, vals)
	if err != nil {
		return nil, fmt.Errorf("helm install %s: %w", name, err)
	}
	return fromRelease(rel, r.chart)
}

// Upgrade is `helm upgrade NAME charts/egressgw` with vals (not --reuse-values: vals are the whole set).
func (r *Releases) Upgrade(ctx context.Context, name string, vals map[string]any) (*Rendered, error) {
	up := action.NewUpgrade(r.cfg)
	up.Namespace = r.namespace
	rel, err := up.RunWithContext(ctx, name, r.chart, vals)
	if err != nil {
		return nil, fmt.Errorf("helm upgrade %s: %w", name, err)
	}
	return fromRelease(rel, r.chart)
}

// Uninstall is `helm uninstall NAME --timeout timeout`: the release's objects deleted, then its
// post-delete hooks run and waited for (Jobs until Complete or Failed), then deleted as their
// hook-delete-policy says. The error carries a failed hook's.
func (r *Releases) Uninstall(name string, timeout time.Duration) (*release.UninstallReleaseResponse, error) {
	un := action.NewUninstall(r.cfg)
	un.Timeout = timeout
	res, err := un.Run(name)
	if err != nil {
		return res, fmt.Errorf("helm uninstall %s: %w", name, err)
	}
	return res, nil
}

// Status is the release's status as `helm status NAME` reports it (deployed, uninstalled, ...).
func (r *Releases) Status(name string) (release.Status, error) {
	rel, err := action.NewStatus(r.cfg).Run(name)
	if err != nil {
		return "", err
	}
	return rel.Info.Status, nil
}
