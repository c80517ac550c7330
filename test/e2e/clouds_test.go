package e2e_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/egressgw/egressgw/test/envtest"
	"github.com/egressgw/egressgw/test/lab"
	"github.com/egressgw/egressgw/test/netlab"
)

// otherCloudTrials is how many gateway deaths TestFailoverOnGCPAndAzure measures on each cloud.
const otherCloudTrials = 5

// TestFailoverOnGCPAndAzure builds the lab on the GCP and the Azure simulators (GKE's and Azure CNI
// overlay's rules, alias IPs and NIC ip configurations moved through the real SDKs, the two-step move)
// and checks the firewall's view and gateway deaths there, as TestFirewallSeesEachPolicy and
// TestFailoverTrials do on AWS.
func TestFailoverOnGCPAndAzure(t *testing.T) {
	needLab(t)
	for _, cloud := range []string{lab.GCP, lab.Azure} {
		t.Run(cloud, func(t *testing.T) {
			var out bytes.Buffer
			l, err := lab.Up(context.Background(), lab.Config{Prefix: netlab.RandomPrefix(), StateDir: t.TempDir(),
				Assets: os.Getenv("KUBEBUILDER_ASSETS"), RepoRoot: envtest.RepoRoot(), Out: &out, Cloud: cloud})
			if err != nil {
				t.Fatalf("the %s lab did not start: %v\n%s", cloud, err, out.String())
			}
			defer func() {
				if err := l.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			ctx := context.Background()
			for _, c := range l.RunChecks(ctx, l.Checks()) {
				if !c.OK() {
					t.Errorf("%s/%s on %s, %s to %s: the firewall saw %v (%v), want %s (%s)", c.Pod.Namespace, c.Pod.Name,
						c.Pod.Node.Name, c.Network, c.Dest, c.Got, c.Err, c.Want, c.Why)
				}
			}
			var outage, moved []time.Duration
			client := l.PodByName("payments", "pay-node3")
			for i := range otherCloudTrials {
				f, err := l.RunFailover(ctx, "gw-pay", lab.PayIP, client)
				if err != nil {
					t.Fatalf("trial %d: %v", i+1, err)
				}
				t.Logf("trial %d: %s", i+1, f)
				for src, n := range f.Sources {
					if src != lab.PayIP {
						t.Errorf("trial %d: the firewall saw %d requests from %s", i+1, n, src)
					}
				}
				outage, moved = append(outage, f.Outage), append(moved, f.Moved)
				if err := l.WaitHealthy(ctx, "gw-pay"); err != nil {
					t.Fatalf("trial %d: %v", i+1, err)
				}
			}
			t.Logf("%s, %d trials: outage p50 %s max %s; the cloud moved the IP p50 %s max %s after the kill", cloud, len(outage),
				lab.Percentile(outage, 50).Round(time.Millisecond), lab.Percentile(outage, 100).Round(time.Millisecond),
				lab.Percentile(moved, 50).Round(time.Millisecond), lab.Percentile(moved, 100).Round(time.Millisecond))
			if errs := l.Cloud.Errors(); len(errs) > 0 {
				t.Errorf("the fabric could not follow the cloud: %v", errs)
			}
		})
	}
}
