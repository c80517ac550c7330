package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/egressgw/egressgw/test/helmchart"
	"github.com/egressgw/egressgw/test/netlab"
)

// The lab installs egressgw from its Helm chart: it renders the chart (as `helm template` would) with
// the cloud's example values and the lab's account, creates the chart's ServiceAccounts and RBAC in the
// API server, and starts the manager Deployment's and the agent DaemonSet's containers as processes,
// with the commands, arguments and environment the chart gives them and a token of the chart's
// ServiceAccount each. A flag a binary does not know, or a permission the RBAC lacks, fails the lab.
//
// What a cluster would give the pods and the lab gives them instead: a kubeconfig with the
// ServiceAccount's token (for the in-cluster configuration), the cloud identity's environment (IRSA,
// Workload Identity; the simulator's endpoint), and the lab's folders for the containers' host paths.

// Names in the chart.
const (
	chartRelease    = "egressgw"
	managerWorkload = "egressgw-manager"
	agentWorkload   = "egressgw-agent"
)

// chartValues are the cloud's example values with the lab's account and ranges.
func (l *Lab) chartValues() (map[string]any, error) {
	file := map[string]string{AWS: "aws/values-eks.yaml", GCP: "gcp/values-gke.yaml", Azure: "azure/values-aks.yaml"}[l.cfg.Cloud]
	vals, err := helmchart.ValuesFile(filepath.Join(l.cfg.RepoRoot, "examples", file))
	if err != nil {
		return nil, err
	}
	lab := l.spec.chartValues(l)
	lab["agent"] = map[string]any{"clusterCIDRs": []any{netlab.VPCSubnet.String(), ServiceCIDR.String()}}
	return mergeValues(vals, lab), nil
}

// mergeValues overlays b on a, recursing into maps, as helm merges -f files.
func mergeValues(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// installChart installs the chart as `helm install` does, through helm's Go SDK against the lab's API
// server: its ServiceAccounts, RBAC, Deployment, DaemonSet and Services are created there, the release is
// recorded (a Secret), and l.chart is what helm installed.
func (l *Lab) installChart(ctx context.Context) error {
	vals, err := l.chartValues()
	if err != nil {
		return err
	}
	log, err := os.OpenFile(l.path("logs", "helm.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.onClose(log.Close)
	// helm's own debug lines (what it deletes, creates and waits for), stamped, as `helm --debug` prints.
	var logMu sync.Mutex
	debug := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(log, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
	}
	if l.helm, err = helmchart.NewReleases(l.AdminKubeconfig, SystemNamespace, debug); err != nil {
		return err
	}
	l.chart, err = l.helm.Install(ctx, chartRelease, vals)
	return err
}

// tokenKubeconfig writes a kubeconfig with a token of the workload's ServiceAccount, as the kubelet
// projects one into the pod.
func (l *Lab) tokenKubeconfig(ctx context.Context, file, workload string) (string, error) {
	sa, err := l.serviceAccountOf(workload)
	if err != nil {
		return "", err
	}
	return l.serviceAccountKubeconfig(ctx, file, sa)
}

// serviceAccountKubeconfig writes a kubeconfig with a TokenRequest token of ServiceAccount sa.
func (l *Lab) serviceAccountKubeconfig(ctx context.Context, file, sa string) (string, error) {
	cs, err := kubernetes.NewForConfig(l.restConfig())
	if err != nil {
		return "", err
	}
	tok, err := cs.CoreV1().ServiceAccounts(SystemNamespace).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](int64((24 * time.Hour).Seconds()))}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of ServiceAccount %s: %w", sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["lab"] = &clientcmdapi.Cluster{Server: l.env.Config.Host, CertificateAuthorityData: l.env.Config.CAData}
	kc.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: sa, Namespace: SystemNamespace}
	kc.CurrentContext = "lab"
	path := l.path(file + ".kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// serviceAccountOf is the ServiceAccount the chart's workload runs as.
func (l *Lab) serviceAccountOf(workload string) (string, error) {
	obj := l.chartWorkload(workload)
	if obj == nil {
		return "", fmt.Errorf("the chart renders no workload %s", workload)
	}
	sa, _, _ := unstructured.NestedString(obj.Object, "spec", "template", "spec", "serviceAccountName")
	if sa == "" {
		return "", fmt.Errorf("%s runs as no ServiceAccount", workload)
	}
	return sa, nil
}

func (l *Lab) chartWorkload(name string) *unstructured.Unstructured {
	if o := l.chart.Find("Deployment", name); o != nil {
		return o
	}
	return l.chart.Find("DaemonSet", name)
}

// chartProcess is how the kubelet would start the workload's container on node n: the chart's command,
// arguments and environment, with the image's paths and the host paths taken to the lab's.
func (l *Lab) chartProcess(kind, workload, container string, n *netlab.Node, pod string) (bin string, args, env []string, err error) {
	c, err := l.chart.PodContainer(kind, workload, container)
	if err != nil {
		return "", nil, nil, err
	}
	bin, args, env = l.containerProcess(c, n, pod)
	return bin, args, env, nil
}

// containerProcess is how the kubelet would start container c of pod on node n (see chartProcess).
func (l *Lab) containerProcess(c *corev1.Container, n *netlab.Node, pod string) (bin string, args, env []string) {
	p := helmchart.ContainerProcess(c, map[string]string{"spec.nodeName": n.Name, "status.hostIP": n.IP.String(),
		"status.podIP": n.IP.String(), "metadata.namespace": SystemNamespace, "metadata.name": pod})
	paths := l.labPaths(n)
	for i, a := range p.Argv {
		p.Argv[i] = relocateImageBinaries(relocate(a, paths), paths)
	}
	for k, v := range p.Env {
		env = append(env, k+"="+relocate(v, paths))
	}
	return p.Argv[0], p.Argv[1:], env
}

// relocateImageBinaries rewrites the image's binaries anywhere in an argument too: a shell script's
// (`sh -c '... exec /usr/local/bin/egressgw-agent uninstall'`).
func relocateImageBinaries(arg string, paths map[string]string) string {
	for from, to := range paths {
		if strings.HasPrefix(from, "/usr/local/bin/") {
			arg = strings.ReplaceAll(arg, from, to)
		}
	}
	return arg
}

// labPaths maps the paths a container sees (its image's and its volumes') to the lab's.
func (l *Lab) labPaths(n *netlab.Node) map[string]string {
	return map[string]string{
		"/usr/local/bin/egressgw-agent":          l.bins.agent,
		"/usr/local/bin/egressgw-manager":        l.bins.manager,
		"/usr/local/bin/egressgw-uninstall-wait": l.bins.uninstallWait,
		"/opt/egressgw/bin":                      l.bins.cniDir,
		"/etc/cni/net.d":                         l.nodeDir(n, "net.d"),
		"/opt/cni/bin":                           l.nodeDir(n, "bin"),
		"/home/kubernetes/bin":                   l.nodeDir(n, "bin"),
		"/run/egressgw":                          l.nodeDir(n, "run"),
		"/etc/egressgw/ca":                       l.path("ca"),
		// The node's /proc/sys/net, which the chart mounts there: a process in the node's namespace
		// reads and writes that namespace's settings through its own /proc/sys.
		"/host/proc/sys": "/proc/sys",
	}
}

// relocate rewrites an argument (or a flag's value) that starts with one of the paths.
func relocate(arg string, paths map[string]string) string {
	flag, value, isFlag := strings.Cut(arg, "=")
	if !isFlag || !strings.HasPrefix(flag, "-") {
		flag, value = "", arg
	}
	for from, to := range paths {
		if value == from || strings.HasPrefix(value, from+"/") {
			value = to + strings.TrimPrefix(value, from)
			break
		}
	}
	if flag == "" {
		return value
	}
	return flag + "=" + value
}

// writeCABundle puts the cloud's CA where the chart's ca-bundle ConfigMap would be mounted.
func (l *Lab) writeCABundle(pem []byte) error {
	if err := os.MkdirAll(l.path("ca"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(l.path("ca", "ca.crt"), pem, 0o644)
}

// Forbidden lists the log lines of the lab's components in which the API server refused a request: the
// chart's RBAC must allow everything the components do.
func (l *Lab) Forbidden() ([]string, error) {
	files, err := filepath.Glob(l.path("logs", "*.log"))
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				lines = append(lines, filepath.Base(f)+": "+line)
			}
		}
	}
	return lines, nil
}
