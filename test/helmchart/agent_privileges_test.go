package helmchart

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestAgentPrivileges: by default the agent runs unprivileged with NET_ADMIN and NET_RAW and writes
// its kernel settings through the node's /proc/sys/net mounted at /host/proc/sys/net (the runtime
// makes its own /proc/sys read-only); agent.privileged=true runs it privileged on /proc/sys, without
// that mount.
func TestAgentPrivileges(t *testing.T) {
	const flag = "--proc-sys-dir=/host/proc/sys"
	for _, c := range []struct {
		set        string
		privileged bool
	}{
		{"cloud=aws,aws.clusterName=prod", false},
		{"cloud=aws,aws.clusterName=prod,agent.privileged=true", true},
	} {
		t.Run(c.set, func(t *testing.T) {
			r, err := Render(mustSet(t, c.set), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ds, err := r.DaemonSet("egressgw-agent")
			if err != nil {
				t.Fatal(err)
			}
			ps := ds.Spec.Template.Spec
			ctr := &ps.Containers[0]
			sc := ctr.SecurityContext
			mounted := HostPathMounts(&ps, ctr)["/host/proc/sys/net"]
			hasFlag := slices.Contains(ctr.Args, flag)
			if c.privileged {
				if sc == nil || sc.Privileged == nil || !*sc.Privileged || hasFlag || mounted != "" {
					t.Errorf("privileged agent: securityContext %+v, %s %v, /host/proc/sys/net from %q; want privileged, neither flag nor mount", sc, flag, hasFlag, mounted)
				}
				return
			}
			if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
				!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
				!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("agent securityContext = %+v; want unprivileged, ALL dropped, NET_ADMIN and NET_RAW added", sc)
			}
			if !hasFlag || mounted != "/proc/sys/net" {
				t.Errorf("agent args %q, /host/proc/sys/net from hostPath %q; want %s and the node's /proc/sys/net", ctr.Args, mounted, flag)
			}
		})
	}
}
