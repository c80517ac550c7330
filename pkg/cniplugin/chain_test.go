package cniplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"

	"github.com/egressgw/egressgw/test/cnilab"
	"github.com/egressgw/egressgw/test/netlab"
)

// chainLab is a node network namespace with libcni configured like a runtime: the reference bridge and
// host-local plugins, then egressgw-cni, in one conflist (test/cnilab).
type chainLab struct {
	*cnilab.Chain
	t       testing.TB
	prefix  string
	node    *netlab.Namespace
	dataDir string
}

// newChainLab chains egressgw-cni to the agent at socket; an empty socket leaves it out.
func newChainLab(t testing.TB, socket, addTimeout string) *chainLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge and veths")
	}
	lab := &chainLab{t: t, prefix: netlab.RandomPrefix(), dataDir: t.TempDir()}
	lab.node = newNamespace(t, lab.prefix+"-node")
	chain, err := cnilab.NewChain(lab.node, cnilab.Config{
		BinDir: pluginBinaries(t), StateDir: lab.dataDir, Bridge: lab.prefix + "-br",
		Subnet: netip.MustParsePrefix("10.250.7.0/24"), SocketPath: socket, AddTimeout: addTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	lab.Chain = chain
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
	return ns, cnilab.PodRuntime(fmt.Sprintf("%s%s0123456789abcdef", l.prefix, name), ns.Name, "shop", name, "uid-"+name)
}

func (l *chainLab) add(rt *libcni.RuntimeConf) (json.RawMessage, error) {
	return l.Add(context.Background(), rt)
}

func (l *chainLab) del(rt *libcni.RuntimeConf) error { return l.Del(context.Background(), rt) }

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
