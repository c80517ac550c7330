package main

import (
	"flag"
	"strings"
	"testing"
)

// TestValidateListsEveryProblem: one run names every bad flag, each with what to change.
func TestValidateListsEveryProblem(t *testing.T) {
	o := newOptions()
	o.nodeName = ""
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.addFlags(fs)
	err := fs.Parse([]string{"--cluster-cidrs=10.0.0.0/8,bogus,fd00::/8", "--vxlan-port=4789", "--log-level=loud",
		"--resync-interval=10ms", "--service-cidrs-from-api=maybe", "--cni-conf-dir=relative", "--state-dir=run/egw", "--iptables-backend=xtables",
		"--proc-sys-dir=host/proc/sys"})
	if err != nil {
		t.Fatal(err)
	}
	err = o.validate("run")
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{"--node-name is empty", `"bogus" is not a CIDR`, `"fd00::/8" is not IPv4`, "port 4789",
		`--log-level="loud"`, "--resync-interval=10ms", `--service-cidrs-from-api="maybe"`, `--cni-conf-dir="relative"`, `--state-dir="run/egw"`, `--iptables-backend="xtables"`,
		`proc-sys directory "host/proc/sys": want an absolute path`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := newOptions().validate("uninstall"); err != nil {
		t.Errorf("uninstall needs no node name: %v", err)
	}
	if err := fs.Parse([]string{"--steer-mask=banana"}); err == nil || !strings.Contains(err.Error(), "unsigned 32-bit") {
		t.Errorf("bad mark: %v", err)
	}
}
