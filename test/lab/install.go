package lab

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The lab's release is installed by Up (installChart) through helm's Go SDK; these are the rest of its
// life, as `helm upgrade` and `helm uninstall` would run it against the lab's API server.

// HelmUpgrade is `helm upgrade egressgw charts/egressgw -n egressgw-system` with the lab's values and
// extra over them. It returns once the lab's controllers rolled the agents and the managers whose
// template changed (a new generation) to the new template, one at a time, each ready before the next.
func (l *Lab) HelmUpgrade(ctx context.Context, extra map[string]any) error {
	vals, err := l.chartValues()
	if err != nil {
		return err
	}
	before, err := l.workloadGenerations(ctx)
	if err != nil {
		return err
	}
	if _, err := l.helm.Upgrade(ctx, chartRelease, mergeValues(vals, extra)); err != nil {
		return err
	}
	after, err := l.workloadGenerations(ctx)
	if err != nil {
		return err
	}
	for name, gen := range after {
		if gen > before[name] {
			l.Printf("helm upgrade: %s at generation %d: rolling its pods", name, gen)
			if err := l.WaitRolledOut(ctx, name, gen, 5*time.Minute); err != nil {
				return err
			}
		}
	}
	return nil
}

// workloadGenerations are the generations of the release's DaemonSet and Deployment in the API server.
func (l *Lab) workloadGenerations(ctx context.Context) (map[string]int64, error) {
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: SystemNamespace, Name: name} }
	var ds appsv1.DaemonSet
	var dep appsv1.Deployment
	if err := l.Client.Get(ctx, key(agentWorkload), &ds); err != nil {
		return nil, fmt.Errorf("the release's DaemonSet: %w", err)
	}
	if err := l.Client.Get(ctx, key(managerWorkload), &dep); err != nil {
		return nil, fmt.Errorf("the release's Deployment: %w", err)
	}
	return map[string]int64{agentWorkload: ds.Generation, managerWorkload: dep.Generation}, nil
}

// HelmUninstall is `helm uninstall egressgw -n egressgw-system --timeout timeout`: the release's objects
// deleted (the lab's controllers stop the agents and managers), then the post-delete hook run (the lab's
// controllers run its DaemonSet's and Job's pods) and its objects deleted as their policy says.
func (l *Lab) HelmUninstall(timeout time.Duration) (*release.UninstallReleaseResponse, error) {
	return l.helm.Uninstall(chartRelease, timeout)
}

// HelmStatus is the release's status (deployed, ...), or the error of `helm status` (none left).
func (l *Lab) HelmStatus() (release.Status, error) { return l.helm.Status(chartRelease) }

// CommandLine is the arguments the lab's process (agent-<node>, manager-<i>) was last started with.
func (l *Lab) CommandLine(name string) ([]string, error) {
	p := l.procs[name]
	if p == nil {
		return nil, fmt.Errorf("no process %s", name)
	}
	return p.cmd.Args, nil
}

// Running says whether the lab's process (agent-<node>, manager-<i>) runs.
func (l *Lab) Running(name string) bool {
	p := l.procs[name]
	return p != nil && !p.exited()
}

// ENIs are the dedicated network interfaces (AWS) the fabric has attached to nodes, by ID.
func (c *Cloud) ENIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.enis {
		ids = append(ids, id)
	}
	return ids
}
