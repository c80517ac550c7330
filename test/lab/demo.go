package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Demonstrate is what `make lab` shows after Up: the table of what the firewall saw from every pod, then
// gateway deaths with their outage as a client retrying every 50 ms saw it, then the table again. It
// returns an error when anything it shows is wrong.
func Demonstrate(ctx context.Context, l *Lab, w io.Writer, failovers int) error {
	l.Printf("what the firewall (%s, outside the VPC) sees from each pod:", "198.51.100.10")
	checks := l.RunChecks(ctx, l.Checks())
	PrintChecks(w, checks)
	var problems []string
	for _, c := range checks {
		if !c.OK() {
			problems = append(problems, fmt.Sprintf("%s/%s %s to %s: saw %v (%v), want %s", c.Pod.Namespace, c.Pod.Name, c.Network, c.Dest, c.Got, c.Err, c.Want))
		}
	}
	client := l.PodByName("payments", "pay-node3")
	var outages []time.Duration
	for i := 1; i <= failovers; i++ {
		holder, _, err := l.Holder(ctx, "gw-pay", PayIP)
		if err != nil {
			return err
		}
		l.Printf("failover %d/%d: kill %s, which holds %s (agent SIGKILL, every link of the instance cut); pay-node3 asks the firewall every 50 ms", i, failovers, holder, PayIP)
		f, err := l.RunFailover(ctx, "gw-pay", PayIP, client)
		if err != nil {
			problems = append(problems, err.Error())
			break
		}
		l.Printf("  %s", f)
		outages = append(outages, f.Outage)
		if wrong := wrongSources(f); wrong != "" {
			problems = append(problems, fmt.Sprintf("failover %d: the firewall saw %s", i, wrong))
		}
		if err := l.WaitHealthy(ctx, "gw-pay"); err != nil {
			problems = append(problems, err.Error())
			break
		}
	}
	if len(outages) > 0 {
		l.Printf("outage over %d failovers: p50 %s, p99 %s, max %s", len(outages), ms(Percentile(outages, 50)),
			ms(Percentile(outages, 99)), ms(Percentile(outages, 100)))
		l.Printf("after the failovers, the firewall sees:")
		after := l.RunChecks(ctx, l.Checks())
		PrintChecks(w, after)
		for _, c := range after {
			if !c.OK() {
				problems = append(problems, fmt.Sprintf("after failover: %s/%s %s to %s: saw %v (%v), want %s", c.Pod.Namespace, c.Pod.Name, c.Network, c.Dest, c.Got, c.Err, c.Want))
			}
		}
	}
	if lines, err := l.Forbidden(); err != nil || len(lines) > 0 {
		problems = append(problems, fmt.Sprintf("the API server refused requests of the chart's ServiceAccounts (%v): %s", err, strings.Join(lines, "\n    ")))
	}
	if sum := l.IPAMDSummary(); sum != "" {
		l.Printf("the VPC CNI's ipamds beside the nodes: %s", sum)
	}
	problems = append(problems, l.VPCCNIProblems(ctx)...)
	if errs := l.Cloud.Errors(); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("the fabric could not follow the cloud: %v", errs))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the lab saw %d problem(s):\n  %s\nlogs: %s", len(problems), strings.Join(problems, "\n  "), l.path("logs"))
	}
	l.Printf("all as expected")
	return nil
}

// wrongSources lists the addresses other than the egress IP the firewall saw during a failover.
func wrongSources(f Failover) string {
	var wrong []string
	for src, n := range f.Sources {
		if src != f.IP {
			wrong = append(wrong, fmt.Sprintf("%s (%d requests)", src, n))
		}
	}
	return strings.Join(wrong, ", ")
}

// Explore is what `make lab-up` prints once the lab runs: where the kubeconfig is and what to try.
func Explore(l *Lab) string {
	pod := l.PodByName("payments", "pay-node3")
	return fmt.Sprintf(`
The lab is running. Its kubeconfig: %[1]s
  export KUBECONFIG=%[1]s
  kubectl get egw                      # gateways: IPs, assigned, healthy nodes
  kubectl get egp -A                   # policies: egress IP and gateway node of each
  kubectl describe egw gw-pay          # where each IP lives, conditions, Events
  kubectl get pods -A -o wide
Ask the firewall from a pod (it answers with the source address it saw):
  ip netns exec %[2]s bash -c 'exec 3<>/dev/tcp/198.51.100.10/8080; echo hello >&3; head -1 <&3'
  (that is payments/pay-node3; every pod's namespace: ip netns list | grep %[4]s-p)
Kill the gateway that holds 10.0.0.50 and watch the IP move (kubectl get egw -w):
  ip netns exec %[4]s-fab iptables -I FORWARD -i n1 -j DROP   # node1's port; undo with -D
Logs of every component: %[3]s
Stop it with: make lab-down
`, l.AdminKubeconfig, pod.NS.Name, l.path("logs"), l.cfg.Prefix)
}
