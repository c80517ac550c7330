package lab

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/egressgw/egressgw/test/netlab"
)

// A node's kernel footprint is the state egressgw's agent may change, read with the tools an operator
// would use: the policy rules, the routes of every table but local, the addresses, VXLAN devices,
// nftables tables, ipsets and both iptables backends' rules. The lab records it before the agents first run; after `helm uninstall` the footprint
// must be that again.
var footprintCommands = map[string][]string{
	"ip rules":          {"ip", "-4", "rule", "show"},
	"routes of tables":  {"ip", "-4", "route", "show", "table", "all"},
	"addresses":         {"ip", "-4", "-o", "addr", "show"},
	"vxlan devices":     {"ip", "-o", "link", "show", "type", "vxlan"},
	"nftables tables":   {"nft", "list", "tables"},
	"ipsets":            {"ipset", "list", "-n"},
	"iptables (nft)":    {"iptables-nft-save"},
	"iptables (legacy)": {"iptables-legacy-save"},
}

// iptablesNoise are the parts of iptables-save's lines that change without a rule changing: the chains'
// packet counters.
var iptablesNoise = regexp.MustCompile(`\[\d+:\d+\]`)

// emptyTableLines are iptables-save's lines of a table with no rule: its header, its built-in chains
// with the ACCEPT policy, COMMIT. Reading a legacy table (the agent's backend check counts their rules)
// makes the kernel create it empty; an empty table changes no packet, so only rules, user chains and
// other policies count.
var emptyTableLines = regexp.MustCompile(`^(\*\w+|COMMIT|:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT)$`)

// kernelFootprint reads n's footprint, leaving out the pods' bridge (its address and its routes, which
// the CNI adds with the first pod).
func kernelFootprint(ctx context.Context, n *netlab.Node, bridge string) (map[string]string, error) {
	out := map[string]string{}
	for what, argv := range footprintCommands {
		b, err := n.NS.Run(ctx, nil, argv[0], argv[1:]...)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %s: %w", strings.Join(argv, " "), n.Name, b, err)
		}
		var keep []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			switch {
			case strings.Contains(line, " dev "+bridge+" ") || strings.Contains(line, ": "+bridge+" "):
				continue
			case what == "routes of tables" && strings.Contains(line, " table local"):
				continue
			case what == "addresses":
				// the address, its device and scope, without the device's index and lifetimes
				if f := strings.Fields(line); len(f) > 3 {
					line = f[1] + " " + f[3]
				}
			case what == "vxlan devices":
				// only the device's name: its index and counters differ between two devices of one name
				if f := strings.Fields(line); len(f) > 1 {
					line = strings.TrimSuffix(f[1], ":")
				}
			case strings.HasPrefix(what, "iptables"):
				line = strings.TrimSpace(iptablesNoise.ReplaceAllString(line, ""))
				if strings.HasPrefix(line, "#") || emptyTableLines.MatchString(line) {
					continue
				}
			}
			if line = strings.TrimSpace(line); line != "" {
				keep = append(keep, line)
			}
		}
		slices.Sort(keep)
		out[what] = strings.Join(keep, "\n")
	}
	return out, nil
}

// recordFootprints keeps every node's footprint before egressgw runs on it.
func (l *Lab) recordFootprints(ctx context.Context) error {
	l.footprints = map[string]map[string]string{}
	for _, n := range l.Topo.Nodes {
		f, err := kernelFootprint(ctx, n, l.spec.bridge())
		if err != nil {
			return err
		}
		l.footprints[n.Name] = f
	}
	return nil
}

// FootprintChanges lists how node's kernel footprint differs from the one before the agents first ran
// (empty: egressgw left nothing behind), each entry naming the part and the lines added or missing; the
// lines of the running pods' own plumbing left out.
func (l *Lab) FootprintChanges(ctx context.Context, node string) ([]string, error) {
	n := l.Node(node)
	if n == nil || l.footprints[node] == nil {
		return nil, fmt.Errorf("no node %s, or no footprint of it", node)
	}
	now, err := kernelFootprint(ctx, n, l.spec.bridge())
	if err != nil {
		return nil, err
	}
	var diffs []string
	for what, before := range l.footprints[node] {
		added, missing := lineDiff(before, withoutPods(now[what], l.Pods))
		for _, line := range added {
			diffs = append(diffs, fmt.Sprintf("%s: left behind: %s", what, line))
		}
		for _, line := range missing {
			diffs = append(diffs, fmt.Sprintf("%s: gone: %s", what, line))
		}
	}
	slices.Sort(diffs)
	return diffs, nil
}

// lineDiff is the lines of b not in a (added) and of a not in b (missing).
func lineDiff(a, b string) (added, missing []string) {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	for _, line := range bs {
		if line != "" && !slices.Contains(as, line) {
			added = append(added, line)
		}
	}
	for _, line := range as {
		if line != "" && !slices.Contains(bs, line) {
			missing = append(missing, line)
		}
	}
	return added, missing
}

// withoutPods drops the lines that name a running pod's address: its own plumbing, which the cloud's CNI
// made when the pod started (the VPC CNI's rule 512 to the pod and its /32 route over the pod's veth).
func withoutPods(footprint string, pods []*Pod) string {
	ips := map[string]bool{}
	for _, p := range pods {
		ips[p.IP.String()] = true
	}
	var keep []string
	for _, line := range strings.Split(footprint, "\n") {
		if !slices.ContainsFunc(strings.Fields(line), func(f string) bool { return ips[strings.TrimSuffix(f, "/32")] }) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
