package e2e_test

import (
	"bytes"
	"context"
	"fmt"
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
			for _, f := range runTrials(t, l, otherCloudTrials) {
				outage, moved = append(outage, f.Outage), append(moved, f.Moved)
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

// TestLeaderCrashInATwoStepMove kills the leading manager in the middle of a failover on the clouds
// without a one-call move (GCP, Azure: release from the dead node, then assign to the new one), every cloud
// write taking 3 s: once while the release is in flight, once while the assign is. The next leader must
// finish the move, and the cloud must never show the IP on two interfaces.
func TestLeaderCrashInATwoStepMove(t *testing.T) {
	needLab(t)
	for _, cloud := range []string{lab.GCP, lab.Azure} {
		t.Run(cloud, func(t *testing.T) {
			var out bytes.Buffer
			l, err := lab.Up(context.Background(), lab.Config{Prefix: netlab.RandomPrefix(), StateDir: t.TempDir(),
				Assets: os.Getenv("KUBEBUILDER_ASSETS"), RepoRoot: envtest.RepoRoot(), Out: &out, Cloud: cloud,
				OperationLatency: 3 * time.Second})
			if err != nil {
				t.Fatalf("the %s lab did not start: %v\n%s", cloud, err, out.String())
			}
			defer func() {
				if err := l.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			for _, during := range []string{"release", "assign"} {
				t.Run("during the "+during, func(t *testing.T) { crashMidMove(t, l, during) })
			}
		})
	}
}

func crashMidMove(t *testing.T, l *lab.Lab, during string) {
	ctx := context.Background()
	from, _, err := l.Holder(ctx, "gw-pay", lab.PayIP)
	if err != nil || from == "" {
		t.Fatalf("%s not assigned before the trial (%v)", lab.PayIP, err)
	}
	leader, err := l.Leader()
	if err != nil {
		t.Fatal(err)
	}
	stopWatch, most := watchHolders(l)
	pr := lab.StartProber(ctx, l.PodByName("payments", "pay-node3"))
	killed := time.Now()
	if err := l.KillNode(from); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	switch during {
	case "release": // the leader has decided and the release operation runs (3 s)
		waitErr = l.WaitFor(ctx, 30*time.Second, "the status to leave "+from, func() (bool, string) {
			node, state, err := l.Holder(ctx, "gw-pay", lab.PayIP)
			return err == nil && (node != from || state != "Assigned"), fmt.Sprint(node, state, err)
		})
		time.Sleep(time.Second)
	case "assign": // the release operation completed and the assign operation runs (3 s)
		waitErr = l.WaitFor(ctx, 30*time.Second, "the cloud to complete the release", func() (bool, string) {
			for _, e := range l.Cloud.Events(killed) {
				if e.IP == lab.PayIP && e.Instance == "" {
					return true, ""
				}
			}
			return false, "no release completed since the kill"
		})
		time.Sleep(time.Second)
	}
	if waitErr != nil {
		pr.Finish()
		t.Fatal(waitErr)
	}
	crashed := time.Since(killed)
	if err := l.KillManager(leader); err != nil {
		t.Fatal(err)
	}
	err = l.WaitMoved(ctx, "gw-pay", lab.PayIP, from, 2*time.Minute)
	assigned := time.Since(killed)
	if err == nil {
		err = l.WaitAnswered(ctx, pr, killed, 30*time.Second)
	}
	attempts := pr.Finish()
	stopWatch()
	onlyEgressIP(t, attempts, "during the move")
	firstFail, back := lab.BackSince(attempts, killed)
	if n := l.Cloud.Holders(lab.PayIP); n != 1 {
		t.Errorf("after the move the cloud shows %s on %d interfaces, want 1", lab.PayIP, n)
	}
	if *most > 1 {
		t.Errorf("the cloud showed %s on %d interfaces at once during the move", lab.PayIP, *most)
	}
	if rerr := l.ReviveNode(ctx, from); rerr != nil {
		t.Error(rerr)
	}
	if serr := l.StartManager(leader); serr != nil {
		t.Error(serr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitHealthy(ctx, "gw-pay"); err != nil {
		t.Error(err)
	}
	t.Logf("%s killed, leader killed %s later (during the %s): Assigned elsewhere after %s, outage as the firewall saw it %s, at most %d interface(s) held the IP",
		from, crashed.Round(time.Millisecond), during, assigned.Round(time.Millisecond), back.Sub(firstFail).Round(time.Millisecond), *most)
}

// watchHolders polls how many interfaces hold payments' IP every 20 ms until stopped, keeping the most.
func watchHolders(l *lab.Lab) (stop func(), most *int) {
	most = new(int)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			*most = max(*most, l.Cloud.Holders(lab.PayIP))
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }, most
}
