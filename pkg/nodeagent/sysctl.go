package nodeagent

import (
	"context"
	"fmt"
	"strings"
)

// wantSysctls are the kernel settings the datapath needs: forwarding, and loose reverse-path filtering
// on the tunnel device, because packets arrive there with pod or internet source addresses whose route
// points elsewhere (the effective value is the maximum of "all" and the device's, so 2 wins over 1).
func (dp *Datapath) wantSysctls() [][2]string {
	return [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf." + dp.cfg.Device + ".rp_filter", "2"},
	}
}

// ensureSysctls reads all settings in one process and writes only those that differ.
func (dp *Datapath) ensureSysctls(ctx context.Context) (int, error) {
	want := dp.wantSysctls()
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
