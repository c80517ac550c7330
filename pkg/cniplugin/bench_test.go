package cniplugin

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/egressgw/egressgw/pkg/cnirpc"
)

// The ADD round trip against an agent that programs at once, as p50/p99 (run with -benchtime=300x or more;
// docs/cni.md has the figures):
//
//	go test -run '^$' -bench AddRoundTrip -benchtime=300x ./pkg/cniplugin
//
// protocol: one request over the socket, in process. plugin-exec: the egressgw-cni binary run the way
// a runtime runs it (a process per ADD, config on stdin). chain: a whole pod ADD through libcni (bridge,
// host-local, then egressgw-cni) in network namespaces, against the same chain without egressgw-cni.
func BenchmarkAddRoundTrip(b *testing.B) {
	b.Run("protocol", func(b *testing.B) {
		c := cnirpc.NewClient(serveAgent(b, &testAgent{}))
		req := cnirpc.AddRequest{Pod: cnirpc.PodIdentity{Namespace: "shop", Name: "web", ContainerID: "c1"}, IPs: []netip.Addr{netip.MustParseAddr("10.250.9.2")}}
		measure(b, func() error { return c.Add(context.Background(), req) })
	})
	b.Run("plugin-exec", func(b *testing.B) {
		socket := serveAgent(b, &testAgent{})
		bin := filepath.Join(pluginBinaries(b), PluginType)
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"egwtest","type":"egressgw-cni","socketPath":%q,"logLevel":"warn",
		  "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],
		  "ips":[{"interface":0,"address":"10.250.9.2/24"}]}}`, socket)
		env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/run/netns/x", "CNI_IFNAME=eth0",
			"CNI_PATH=" + filepath.Dir(bin), "CNI_ARGS=K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web"}
		measure(b, func() error {
			cmd := exec.Command(bin)
			cmd.Env, cmd.Stdin = env, bytes.NewReader([]byte(conf))
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})
}

// BenchmarkPodAddChain is a whole pod ADD through libcni, with and without egressgw-cni at the end of the
// chain: the difference is what egressgw adds to a pod's start.
func BenchmarkPodAddChain(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: network namespaces, a bridge and veths")
	}
	for _, withEgressgw := range []bool{false, true} {
		b.Run(fmt.Sprintf("egressgw=%v", withEgressgw), func(b *testing.B) {
			socket := "" // the chain without egressgw-cni
			if withEgressgw {
				socket = serveAgent(b, &testAgent{})
			}
			lab := newChainLab(b, socket, "10s")
			_, rt := lab.pod("bench")
			b.ResetTimer()
			var durations []time.Duration
			for range b.N {
				start := time.Now()
				if _, err := lab.add(rt); err != nil {
					b.Fatal(err)
				}
				durations = append(durations, time.Since(start))
				if err := lab.del(rt); err != nil {
					b.Fatal(err)
				}
			}
			report(b, durations)
		})
	}
}

// measure runs op b.N times and reports the latency percentiles.
func measure(b *testing.B, op func() error) {
	b.Helper()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	report(b, durations)
}

func report(b *testing.B, durations []time.Duration) {
	if len(durations) == 0 {
		return
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	pct := func(p float64) float64 {
		return float64(durations[int(p*float64(len(durations)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(durations[len(durations)-1].Microseconds())/1000, "max-ms")
}
