package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/test/cnilab"
	"github.com/egressgw/egressgw/test/netlab"
)

// Pod is a pod the lab started: its API object's name, its network namespace and address.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	Node            *netlab.Node
	NS              *netlab.Namespace
	IP              netip.Addr
	// Added is when CNI ADD returned (the pod's network exists and its first packet may leave).
	Added time.Time
	// Sandboxes is how many sandboxes the runtime tried before one's ADD succeeded (addSandbox).
	Sandboxes int

	rt   *libcni.RuntimeConf
	list *libcni.NetworkConfigList
}

// PodSpec says what pod to start where.
type PodSpec struct {
	Namespace, Name string
	Labels          map[string]string
	Node            string
	// AfterAdd, when set, runs as soon as CNI ADD returned, before the Pod's status is written: where a
	// container's first packet leaves.
	AfterAdd func(*Pod)
}

// initialPods: on every node a selected pod of each tenant and an unselected one; a pod of the tenant
// no gateway admits on node3.
func (l *Lab) initialPods() []PodSpec {
	var pods []PodSpec
	for _, n := range l.Topo.Nodes {
		pods = append(pods,
			PodSpec{Namespace: "payments", Name: "pay-" + n.Name, Labels: map[string]string{"app": "pay"}, Node: n.Name},
			PodSpec{Namespace: "payments", Name: "web-" + n.Name, Labels: map[string]string{"app": "web"}, Node: n.Name},
			PodSpec{Namespace: "reports", Name: "report-" + n.Name, Labels: map[string]string{"app": "report"}, Node: n.Name})
	}
	return append(pods, PodSpec{Namespace: "sandbox", Name: "pay-node3", Labels: map[string]string{"app": "pay"}, Node: "node3"})
}

func (l *Lab) startPods(ctx context.Context) error {
	l.onClose(l.stopPods)
	for _, spec := range l.initialPods() {
		if _, err := l.StartPod(ctx, spec); err != nil {
			return err
		}
	}
	return nil
}

// StartPod does what the kubelet and the container runtime do for a pod bound to a node: the Pod object
// exists (the lab creates it, bound), the sandbox gets a network namespace, the node's CNI configuration
// (the first conflist of its folder, as containerd picks it) runs through libcni with the pod's CNI_ARGS,
// and the Pod's status gets its IP once ADD returned.
func (l *Lab) StartPod(ctx context.Context, spec PodSpec) (*Pod, error) {
	n := l.Node(spec.Node)
	if n == nil {
		return nil, fmt.Errorf("pod %s/%s: no node %s", spec.Namespace, spec.Name, spec.Node)
	}
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: spec.Namespace, Name: spec.Name, Labels: spec.Labels},
		Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
	if err := l.Client.Create(ctx, obj); err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	l.podSeq++
	ns, err := netlab.NewNamespace(ctx, fmt.Sprintf("%s-p%d", l.cfg.Prefix, l.podSeq))
	if err != nil {
		return nil, err
	}
	p := &Pod{Namespace: spec.Namespace, Name: spec.Name, Labels: spec.Labels, Node: n, NS: ns}
	l.Pods = append(l.Pods, p)
	if p.list, err = l.nodeConflist(n); err != nil {
		return p, err
	}
	result, err := l.addSandbox(ctx, p, string(obj.UID))
	if err != nil {
		return p, fmt.Errorf("CNI ADD of %s/%s on %s: %w", spec.Namespace, spec.Name, n.Name, err)
	}
	p.Added = time.Now()
	if p.IP, err = cnilab.FirstIP(result); err != nil {
		return p, err
	}
	if spec.AfterAdd != nil {
		spec.AfterAdd(p)
	}
	if problems := l.podPlumbingProblems(ctx, p); len(problems) > 0 {
		return p, fmt.Errorf("pod %s/%s after CNI ADD: %s", spec.Namespace, spec.Name, strings.Join(problems, "; "))
	}
	obj.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: n.IP.String(), PodIP: p.IP.String(),
		HostIPs: []corev1.HostIP{{IP: n.IP.String()}}, PodIPs: []corev1.PodIP{{IP: p.IP.String()}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := l.Client.Status().Update(ctx, obj); err != nil {
		return p, fmt.Errorf("pod %s/%s status: %w", spec.Namespace, spec.Name, err)
	}
	return p, nil
}

// sandboxAttempts bound addSandbox; sandboxRetry is its pause between sandboxes (the kubelet's is longer:
// its pod worker backs off from about a second).
const (
	sandboxAttempts = 25
	sandboxRetry    = 200 * time.Millisecond
)

// addSandbox runs CNI ADD for p's sandbox as the runtime does; when it fails, it runs the DEL the runtime
// runs for a failed sandbox and tries a new sandbox after a pause, as the kubelet retries the pod: on EKS
// an ADD fails while ipamd's pool is empty ("failed to assign an IP address to container"), until
// ipamd has grown it.
func (l *Lab) addSandbox(ctx context.Context, p *Pod, uid string) (json.RawMessage, error) {
	var errs []error
	for attempt := 1; attempt <= sandboxAttempts; attempt++ {
		p.rt, p.Sandboxes = cnilab.PodRuntime(fmt.Sprintf("lab%024x%08x", l.podSeq, attempt), p.NS.Name, p.Namespace, p.Name, uid), attempt
		var result json.RawMessage
		err := p.Node.NS.Do(func() error {
			res, err := l.cni(p.Node).AddNetworkList(ctx, p.list, p.rt)
			if err != nil {
				return err
			}
			result, err = json.Marshal(res)
			return err
		})
		if err == nil {
			return result, nil
		}
		errs = append(errs, fmt.Errorf("sandbox %d: %w", attempt, err))
		if err := p.Node.NS.Do(func() error { return l.cni(p.Node).DelNetworkList(ctx, p.list, p.rt) }); err != nil {
			errs = append(errs, fmt.Errorf("sandbox %d teardown: %w", attempt, err))
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(sandboxRetry)
	}
	return nil, errors.Join(errs...)
}

// StopPod runs CNI DEL (last plugin first), deletes the namespace and the Pod object. DEL runs the
// node's current conflist, as containerd's CNI library (which reloads the folder) does: a pod started
// while egressgw-cni was chained is deleted without it after an uninstall.
func (l *Lab) StopPod(ctx context.Context, p *Pod) error {
	var errs []error
	if p.list != nil {
		list := p.list
		if current, err := l.nodeConflist(p.Node); err == nil {
			list = current
		}
		errs = append(errs, p.Node.NS.Do(func() error { return l.cni(p.Node).DelNetworkList(ctx, list, p.rt) }))
	}
	if p.NS != nil {
		errs = append(errs, p.NS.Close())
		p.NS = nil
	}
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
	errs = append(errs, client.IgnoreNotFound(l.Client.Delete(ctx, obj, client.GracePeriodSeconds(0))))
	for i, q := range l.Pods {
		if q == p {
			l.Pods = append(l.Pods[:i], l.Pods[i+1:]...)
			break
		}
	}
	return errors.Join(errs...)
}

func (l *Lab) stopPods() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(l.Pods) > 0 {
		errs = append(errs, l.StopPod(ctx, l.Pods[len(l.Pods)-1]))
	}
	return errors.Join(errs...)
}

// cni is the runtime's CNI library for node n: plugins from its bin folder, results cached in its state.
func (l *Lab) cni(n *netlab.Node) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{l.nodeDir(n, "bin")}, l.nodeDir(n, "cni-cache"),
		&invoke.DefaultExec{RawExec: &invoke.RawExec{}})
}

// nodeConflist reads the node's CNI configuration as the runtime does when a sandbox starts.
func (l *Lab) nodeConflist(n *netlab.Node) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(l.nodeDir(n, "net.d"), []string{".conflist"})
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no conflist in %s: %v", l.nodeDir(n, "net.d"), err)
	}
	return libcni.ConfListFromFile(filepath.Clean(files[0]))
}

// PodByName finds a started pod.
func (l *Lab) PodByName(namespace, name string) *Pod {
	for _, p := range l.Pods {
		if p.Namespace == namespace && p.Name == name {
			return p
		}
	}
	return nil
}
