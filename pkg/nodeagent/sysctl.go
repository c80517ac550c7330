package nodeagent

import (
	"context"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
)

// wantSysctls are the kernel settings the datapath needs: forwarding, and loose reverse-path filtering
// on the tunnel device and the egress interface, because packets arrive there with pod or internet
// source addresses whose route points elsewhere (the effective value is the maximum of "all" and the
// device's, so 2 wins over 1).
func (dp *Datapath) wantSysctls(egress netlink.Link) [][2]string {
	want := [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf." + dp.cfg.Device + ".rp_filter", "2"},
	}
	if egress != nil {
		want = append(want, [2]string{"net.ipv4.conf." + egress.Attrs().Name + ".rp_filter", "2"})
	}
	return want
}

// ensureSysctls reads all settings in one process and writes only those that differ.
func (dp *Datapath) ensureSysctls(ctx context.Context, egress netlink.Link) (int, error) {
	want := dp.wantSysctls(egress)
	args := []string{"-n"}
	for _, kv := range want {
		args = append(args, kv[0])
	}
	out, err := dp.exec.Run(ctx, nil, "sysctl", args...)
	if err != nil {
		return 0, err
	}
	got := strings.Fields(string(out))
	var set []string
	for i, kv := range want {
		if i >= len(got) || got[i] != kv[1] {
			set = append(set, kv[0]+"="+kv[1])
		}
	}
	if len(set) == 0 {
		return 0, nil
	}
	if _, err := dp.exec.Run(ctx, nil, "sysctl", append([]string{"-q", "-w"}, set...)...); err != nil {
		return 0, fmt.Errorf("sysctl: %w", err)
	}
	return len(set), nil
}
