package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/test/netlab"
)

// The lab's API server runs no kube-controller-manager and no kubelet. The controllers stand in for
// what they do to the objects the chart creates, as far as helm's install, upgrade and uninstall need:
//
//   - The release's agent DaemonSet and manager Deployment, whose containers the lab runs as processes
//     since Up: a new generation (helm upgrade changed the pod template) replaces them one at a time
//     with the template the API server now holds (the DaemonSet's RollingUpdate, the Deployment's
//     maxUnavailable 1 / maxSurge 0, the next only once the new one is ready); their deletion (helm
//     uninstall) stops them as the garbage collector (deleting their pods) and the kubelet (SIGTERM, then
//     SIGKILL after terminationGracePeriodSeconds) would.
//   - Any other DaemonSet (the uninstall hook's): a pod on every node its nodeSelector matches; in it the
//     init containers run one after another, a failed one again after the kubelet's back-off (10 s,
//     doubling), then the containers start and the pod is ready (no readiness probe). Its status as the
//     DaemonSet controller writes it (kubernetes pkg/controller/daemon, storeDaemonSetStatus).
//   - A Job (the hook's waiter): its pod's containers on a node, with a token of its ServiceAccount; a
//     failed pod replaced until backoffLimit; its status as the Job controller writes it (kubernetes
//     pkg/controller/job: startTime, active/ready, then succeeded or failed with the interim and the
//     terminal condition, completionTime).
//
// Not emulated: Pod objects (nothing here reads them), the scheduler's resources and affinities, users
// and capabilities (the lab's processes run as root with the node's namespace).
type controllers struct {
	lab  *Lab
	log  *slog.Logger
	stop chan struct{}
	done sync.WaitGroup

	mu sync.Mutex
	// generations of the release's workloads the lab runs (0: not seen yet, -1: deleted).
	generations map[string]int64
	hooks       map[types.UID]*hookRun
	errs        []error
}

// hookRun is the pods of one DaemonSet or Job the controllers run.
type hookRun struct {
	kind, name string
	gone       chan struct{} // closed when the object is deleted
	done       sync.WaitGroup
	mu         sync.Mutex
	procs      []*proc
	ready      map[string]bool // DaemonSet: node -> its pod is ready
	grace      time.Duration   // the pods' terminationGracePeriodSeconds
}

func (l *Lab) startControllers(context.Context) error {
	log, err := l.simLog("controllers")
	if err != nil {
		return err
	}
	c := &controllers{lab: l, log: log, stop: make(chan struct{}), generations: map[string]int64{}, hooks: map[types.UID]*hookRun{}}
	l.ctrls = c
	c.done.Add(1)
	go c.loop()
	l.onClose(c.close)
	return nil
}

// loop resyncs every 250 ms (the controllers' informers, done as polls).
func (c *controllers) loop() {
	defer c.done.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for _, err := range []error{c.syncReleaseWorkloads(ctx), c.syncDaemonSets(ctx), c.syncJobs(ctx)} {
			if err != nil && ctx.Err() == nil {
				c.fail(err)
			}
		}
		cancel()
	}
}

func (c *controllers) fail(err error) {
	c.log.Error("controller", "err", err)
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

// close stops the loop and every hook pod's processes.
func (c *controllers) close() error {
	close(c.stop)
	c.done.Wait()
	c.mu.Lock()
	runs := c.hooks
	c.hooks = map[types.UID]*hookRun{}
	c.mu.Unlock()
	for _, r := range runs {
		r.delete(time.Second)
	}
	return nil
}

// ControllerErrors are the errors of the lab's stand-in controllers (a status the API server refused, a
// container that could not start).
func (l *Lab) ControllerErrors() []error {
	l.ctrls.mu.Lock()
	defer l.ctrls.mu.Unlock()
	return append([]error(nil), l.ctrls.errs...)
}

// releaseWorkloads are the chart's workloads whose containers the lab runs, by kind and name.
var releaseWorkloads = []struct{ kind, name string }{{"DaemonSet", agentWorkload}, {"Deployment", managerWorkload}}

func (c *controllers) syncReleaseWorkloads(ctx context.Context) error {
	for _, w := range releaseWorkloads {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apps/v1")
		u.SetKind(w.kind)
		err := c.lab.Client.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: w.name}, u)
		c.mu.Lock()
		seen := c.generations[w.name]
		c.mu.Unlock()
		var next int64
		switch {
		case apierrors.IsNotFound(err) && seen > 0:
			c.log.Info("deleted: stopping its pods", "kind", w.kind, "name", w.name)
			c.stopWorkload(w.kind, gracePeriod(u))
			next = -1
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("read %s %s: %w", w.kind, w.name, err)
		case err == nil && seen == 0:
			next = u.GetGeneration()
		case err == nil && seen > 0 && u.GetGeneration() > seen:
			c.log.Info("new generation: rolling its pods", "kind", w.kind, "name", w.name, "generation", u.GetGeneration())
			c.lab.chart.Replace(u)
			if err := c.roll(ctx, w.kind); err != nil {
				return fmt.Errorf("roll %s %s to generation %d: %w", w.kind, w.name, u.GetGeneration(), err)
			}
			next = u.GetGeneration()
		default:
			continue
		}
		c.mu.Lock()
		c.generations[w.name] = next
		c.mu.Unlock()
	}
	return nil
}

// gracePeriod is the pod template's terminationGracePeriodSeconds (the API's default, 30 s, without).
func gracePeriod(u *unstructured.Unstructured) time.Duration {
	s, ok, _ := unstructured.NestedInt64(u.Object, "spec", "template", "spec", "terminationGracePeriodSeconds")
	if !ok {
		s = 30
	}
	return time.Duration(s) * time.Second
}

// workloadProcs are the names of the lab's processes of a release workload, in rollout order.
func (c *controllers) workloadProcs(kind string) []string {
	var names []string
	if kind == "DaemonSet" {
		for _, n := range c.lab.Topo.Nodes {
			names = append(names, "agent-"+n.Name)
		}
		return names
	}
	for i := range c.lab.managerNodes() {
		names = append(names, fmt.Sprintf("manager-%d", i+1))
	}
	return names
}

func (c *controllers) stopWorkload(kind string, grace time.Duration) {
	var wg sync.WaitGroup
	for _, name := range c.workloadProcs(kind) {
		if p := c.lab.procs[name]; p != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.stop(syscall.SIGTERM, grace); err != nil {
					c.log.Warn("pod did not stop in its grace period", "process", name, "err", err)
				}
			}()
		}
	}
	wg.Wait()
}

// roll replaces the workload's pods one at a time, each new one ready before the next goes.
func (c *controllers) roll(ctx context.Context, kind string) error {
	for i, name := range c.workloadProcs(kind) {
		if p := c.lab.procs[name]; p != nil {
			if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				return err
			}
		}
		if kind == "DaemonSet" {
			n := c.lab.Topo.Nodes[i]
			if err := c.lab.startAgent(n); err != nil {
				return err
			}
			if err := c.lab.waitAgentReady(ctx, n, time.Minute); err != nil {
				return err
			}
			continue
		}
		if err := c.lab.StartManager(i + 1); err != nil {
			return err
		}
		if err := c.lab.waitManagerReady(ctx, i+1); err != nil {
			return err
		}
	}
	return nil
}

// waitManagerReady waits for replica i's readiness probe (the chart's /readyz on its health port).
func (l *Lab) waitManagerReady(ctx context.Context, i int) error {
	n := l.managerNodes()[i-1]
	ct, err := l.chart.PodContainer("Deployment", managerWorkload, "manager")
	if err != nil {
		return err
	}
	url, err := probeURL(ct, n)
	if err != nil {
		return err
	}
	return l.WaitFor(ctx, time.Minute, fmt.Sprintf("manager-%d ready (%s)", i, url), func() (bool, string) {
		status, body, err := httpGetIn(ctx, n.NS, url)
		return err == nil && status == 200, fmt.Sprintf("%d %s %v", status, body, err)
	})
}

// probeURL is where the kubelet sends a container's HTTP readiness probe (the pod's address is its
// node's in the lab).
func probeURL(ct *corev1.Container, n *netlab.Node) (string, error) {
	p := ct.ReadinessProbe
	if p == nil || p.HTTPGet == nil {
		return "", fmt.Errorf("container %s has no HTTP readiness probe", ct.Name)
	}
	port := p.HTTPGet.Port.IntValue()
	for _, cp := range ct.Ports {
		if cp.Name == p.HTTPGet.Port.String() {
			port = int(cp.ContainerPort)
		}
	}
	if port == 0 {
		return "", fmt.Errorf("container %s: readiness probe port %s is not one of its ports", ct.Name, p.HTTPGet.Port.String())
	}
	return fmt.Sprintf("http://%s:%d%s", n.IP, port, p.HTTPGet.Path), nil
}

// WaitRolledOut waits until the lab's pods of the release workload (DaemonSet or Deployment) run
// generation gen or later of its template.
func (l *Lab) WaitRolledOut(ctx context.Context, name string, gen int64, limit time.Duration) error {
	return l.WaitFor(ctx, limit, fmt.Sprintf("%s rolled out to generation %d", name, gen), func() (bool, string) {
		l.ctrls.mu.Lock()
		defer l.ctrls.mu.Unlock()
		if len(l.ctrls.errs) > 0 {
			return false, l.ctrls.errs[len(l.ctrls.errs)-1].Error()
		}
		return l.ctrls.generations[name] >= gen, fmt.Sprintf("at generation %d", l.ctrls.generations[name])
	})
}

// schedule is the lab's nodes whose labels match a pod template's nodeSelector.
func (c *controllers) schedule(spec *corev1.PodSpec) ([]*netlab.Node, error) {
	var out []*netlab.Node
	sel := labels.SelectorFromSet(spec.NodeSelector)
	for _, n := range c.lab.Topo.Nodes {
		var node corev1.Node
		if err := c.lab.Client.Get(context.Background(), client.ObjectKey{Name: n.Name}, &node); err != nil {
			return nil, err
		}
		if sel.Matches(labels.Set(node.Labels)) {
			out = append(out, n)
		}
	}
	return out, nil
}

// startContainer runs container ct of pod on node n as the kubelet would: the container's command with
// the lab's paths, a token of the pod's ServiceAccount unless the pod opts out, and on the node the
// node's own processes only (pgrep, for a hostPID pod).
func (c *controllers) startContainer(ctx context.Context, r *hookRun, spec *corev1.PodSpec, ct *corev1.Container, n *netlab.Node, pod string) (*proc, error) {
	bin, args, env := c.lab.containerProcess(ct, n, pod)
	if spec.ServiceAccountName != "" && (spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken) {
		kc, err := c.lab.serviceAccountKubeconfig(ctx, pod, spec.ServiceAccountName)
		if err != nil {
			return nil, err
		}
		env = append(env, "KUBECONFIG="+kc)
	}
	hostBin, err := c.lab.nodeTools()
	if err != nil {
		return nil, err
	}
	env = append(env, "PATH="+hostBin+":"+os.Getenv("PATH"))
	p, err := c.lab.spawn(pod+"-"+ct.Name, n.NS, env, bin, args...)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return p, nil
}

// nodeTools is a folder of wrappers that make a node's tools see that node only: in the lab every node
// shares the machine's process table, and a node is its network namespace (pgrep --ns).
func (l *Lab) nodeTools() (string, error) {
	dir := l.path("node-tools")
	script := "#!/bin/sh\n# the processes of this node (its network namespace) only\nexec /usr/bin/pgrep --ns $$ --nslist net \"$@\"\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(dir+"/pgrep", []byte(script), 0o755)
}

// wait returns the process's error once it exits, or errGone when the pod's object is deleted first.
func (r *hookRun) wait(p *proc) error {
	select {
	case <-p.done:
		return p.err
	case <-r.gone:
		return errGone
	}
}

var errGone = errors.New("the pod's owner was deleted")

// delete stops every process of the run (SIGTERM, SIGKILL after grace) and waits for its goroutines.
func (r *hookRun) delete(grace time.Duration) {
	select {
	case <-r.gone:
	default:
		close(r.gone)
	}
	r.mu.Lock()
	procs := append([]*proc(nil), r.procs...)
	r.mu.Unlock()
	for _, p := range procs {
		_ = p.stop(syscall.SIGTERM, grace)
	}
	r.done.Wait()
}

// sleepOrGone waits d, or less when the owner is deleted (reported true).
func (r *hookRun) sleepOrGone(d time.Duration) bool {
	select {
	case <-time.After(d):
		return false
	case <-r.gone:
		return true
	}
}
