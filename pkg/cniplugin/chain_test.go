package cniplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/vishvananda/netlink"

	"github.com/egressgw/egressgw/test/netlab"
)

// chainLab is a node network namespace with libcni configured like a runtime: the reference bridge and
// host-local plugins, then egressgw-cni, in one conflist.
type chainLab struct {
	t       testing.TB
	prefix  string
	node    *netlab.Namespace
	cni     *libcni.CNIConfig
	exec    *recordingExec
	list    *libcni.NetworkConfigList
	dataDir string
}

func newChainLab(t testing.TB, socket, addTimeout string) *chainLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge and veths")
	}
	bins := pluginBinaries(t)
	lab := &chainLab{t: t, prefix: netlab.RandomPrefix(), dataDir: t.TempDir()}
	lab.node = newNamespace(t, lab.prefix+"-node")
	lab.exec = &recordingExec{DefaultExec: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}}
	lab.cni = libcni.NewCNIConfigWithCacheDir([]string{bins}, t.TempDir(), lab.exec)
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "egwtest",
  "plugins": [
    {"type": "bridge", "bridge": "%s-br", "isGateway": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.7.0/24"}]], "dataDir": %q}},
    {"type": "egressgw-cni", "socketPath": %q, "addTimeout": %q, "logLevel": "warn"}
  ]
}`, lab.prefix, lab.dataDir, socket, addTimeout)
	list, err := libcni.NetworkConfFromBytes([]byte(conflist))
	if err != nil {
		t.Fatal(err)
	}
	lab.list = list
	return lab
}

func newNamespace(t testing.TB, name string) *netlab.Namespace {
	t.Helper()
	ns, err := netlab.NewNamespace(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	return ns
}

// pod is a sandbox as a runtime makes it: a network namespace and the runtime's CNI_ARGS.
func (l *chainLab) pod(name string) (*netlab.Namespace, *libcni.RuntimeConf) {
	ns := newNamespace(l.t, l.prefix+"-"+name)
	rt := &libcni.RuntimeConf{
		ContainerID: fmt.Sprintf("%s%s0123456789abcdef", l.prefix, name),
		NetNS:       "/run/netns/" + ns.Name,
		IfName:      "eth0",
		// What containerd passes (internal/cri/server/sandbox_run.go toCNILabels).
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "shop"}, {"K8S_POD_NAME", name},
			{"K8S_POD_INFRA_CONTAINER_ID", "infra-" + name}, {"K8S_POD_UID", "uid-" + name}},
	}
	return ns, rt
}

// withoutEgressgw drops egressgw-cni from the list: the chain a node has before egressgw is installed.
func (l *chainLab) withoutEgressgw() {
	l.list.Plugins = l.list.Plugins[:1]
}

func (l *chainLab) add(rt *libcni.RuntimeConf) (json.RawMessage, error) {
	var out json.RawMessage
	// In the node namespace, so the plugins libcni starts run there, as on a node.
	err := l.node.Do(func() error {
		res, err := l.cni.AddNetworkList(context.Background(), l.list, rt)
		if err != nil {
			return err
		}
		out, err = json.Marshal(res)
		return err
	})
	return out, err
}

func (l *chainLab) del(rt *libcni.RuntimeConf) error {
	return l.node.Do(func() error { return l.cni.DelNetworkList(context.Background(), l.list, rt) })
}

// podIPv4 is the IPv4 address on eth0 inside a pod namespace, or an invalid address when there is none.
func podIPv4(t *testing.T, ns *netlab.Namespace) netip.Addr {
	t.Helper()
	link, err := ns.NL.LinkByName("eth0")
	if err != nil {
		return netip.Addr{}
	}
	addrs, err := ns.NL.AddrList(link, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}
	}
	ip, _ := netip.AddrFromSlice(addrs[0].IP.To4())
	return ip
}

// reservations lists host-local's reserved addresses (one file per address in its data dir).
func (l *chainLab) reservations() []string {
	entries, _ := os.ReadDir(filepath.Join(l.dataDir, "egwtest"))
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// recordingExec is libcni's own DefaultExec that also keeps each plugin's stdout, so a test can compare what
// the bridge returned with what egressgw-cni returned.
type recordingExec struct {
	*invoke.DefaultExec
	mu      sync.Mutex
	outputs []pluginOutput
}

type pluginOutput struct {
	plugin  string
	command string
	stdout  []byte
}

func (e *recordingExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	out, err := e.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, environ)
	command := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			command = v
		}
	}
	e.mu.Lock()
	e.outputs = append(e.outputs, pluginOutput{plugin: filepath.Base(pluginPath), command: command, stdout: out})
	e.mu.Unlock()
	return out, err
}

// lastOutput is the last stdout of plugin for command.
func (e *recordingExec) lastOutput(plugin, command string) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.outputs) - 1; i >= 0; i-- {
		if e.outputs[i].plugin == plugin && e.outputs[i].command == command {
			return e.outputs[i].stdout
		}
	}
	return nil
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}
