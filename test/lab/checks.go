package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/egressgw/egressgw/test/netlab"
)

// Check is one request from a pod to the firewall and the source address the firewall must see.
type Check struct {
	Pod     *Pod
	Network string // tcp or udp
	Dest    netip.Addr
	Want    netip.Addr
	Why     string // why Want: "egress IP of gw-pay", "its node (unselected)"
	Got     netip.Addr
	Err     error
}

// OK says the firewall saw the address it had to.
func (c Check) OK() bool { return c.Err == nil && c.Got == c.Want }

// Checks are the lab's expectations for its initial pods: selected pods through their gateway, the
// others (unselected, excluded destination, destination outside the policy, tenant not admitted) as the
// cloud's CNI sends them (their node's address, or on GKE their own), over TCP and UDP.
func (l *Lab) Checks() []Check {
	var out []Check
	add := func(p *Pod, network string, dest netip.Addr, want netip.Addr, why string) {
		if p != nil {
			out = append(out, Check{Pod: p, Network: network, Dest: dest, Want: want, Why: why})
		}
	}
	// ordinary is where a pod's packet leaves from when egressgw leaves it alone: as the CNI sends it.
	ordinary := func(ns, name string, dest netip.Addr) (*Pod, netip.Addr) {
		p := l.PodByName(ns, name)
		if p == nil {
			return nil, netip.Addr{}
		}
		return p, l.Topo.SourceLeaving(p.Node, p.IP, dest)
	}
	server, alt := netlab.ServerIP, netlab.AltServerIP
	for _, n := range l.Topo.Nodes {
		add(l.PodByName("payments", "pay-"+n.Name), "tcp", server, PayIP, "payments/pay via gw-pay")
		p, want := ordinary("payments", "web-"+n.Name, server)
		add(p, "tcp", server, want, "as the CNI sends it: not selected")
		add(l.PodByName("reports", "report-"+n.Name), "tcp", server, ReportsIP, "reports/report via gw-reports")
	}
	p, want := ordinary("sandbox", "pay-node3", server)
	add(p, "tcp", server, want, "as the CNI sends it: namespace not admitted, UseNodeIP")
	add(l.PodByName("payments", "pay-node1"), "udp", server, PayIP, "payments/pay via gw-pay")
	add(l.PodByName("reports", "report-node4"), "udp", server, ReportsIP, "reports/report via gw-reports")
	p, want = ordinary("payments", "pay-node2", alt)
	add(p, "tcp", alt, want, "as the CNI sends it: destination excluded")
	p, want = ordinary("reports", "report-node3", alt)
	add(p, "tcp", alt, want, "as the CNI sends it: not a policy destination")
	return out
}

// RunChecks sends every check's request, retrying for a few seconds while no answer comes (a pod just
// started may wait for its gateway), and fills in what the firewall saw.
func (l *Lab) RunChecks(ctx context.Context, checks []Check) []Check {
	for i := range checks {
		c := &checks[i]
		server := netip.AddrPortFrom(c.Dest, netlab.EchoPort)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			token := fmt.Sprintf("check-%s-%s-%d", c.Pod.Name, c.Network, time.Now().UnixNano())
			c.Got, c.Err = askOnce(ctx, c.Pod.NS, c.Network, server, token, time.Second)
			if c.Err == nil || time.Now().After(deadline) {
				break
			}
		}
	}
	return checks
}

// PrintChecks writes the table a person reads: pod, node, namespace, policy, destination, what the
// firewall saw, and whether it is right.
func PrintChecks(w io.Writer, checks []Check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  POD\tNODE\tNAMESPACE\tPROTO\tTO\tFIREWALL SAW\tEXPECTED\tWHY\t")
	for _, c := range checks {
		saw := c.Got.String()
		if c.Err != nil {
			saw = "nothing (" + shortErr(c.Err) + ")"
		}
		mark := "ok"
		if !c.OK() {
			mark = "WRONG"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Pod.Name, c.Pod.Node.Name, c.Pod.Namespace,
			c.Network, c.Dest, saw, c.Want, c.Why, mark)
	}
	_ = tw.Flush()
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// askOnce sends one request from inside ns and returns the source address the echo server saw, waiting
// at most timeout for the answer.
func askOnce(ctx context.Context, ns *netlab.Namespace, network string, server netip.AddrPort, token string, timeout time.Duration) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	if err := ns.Do(func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, network, server.String())
		return err
	}); err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte(token + " \n")); err != nil {
		return netip.Addr{}, err
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return netip.Addr{}, err
	}
	src, _, _ := strings.Cut(string(buf[:n]), " ")
	ap, err := netip.ParseAddrPort(src)
	return ap.Addr(), err
}

// Ask sends one request from p to the firewall and returns the source it saw.
func (p *Pod) Ask(ctx context.Context, network string, dest netip.Addr, token string, timeout time.Duration) (netip.Addr, error) {
	return askOnce(ctx, p.NS, network, netip.AddrPortFrom(dest, netlab.EchoPort), token, timeout)
}
