package nodeagent

import (
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"long device", func(c *Config) { c.Device = "egressgw-too-long0" }, "1 to 15 characters"},
		{"vni zero", func(c *Config) { c.VNI = 0 }, "vni 0"},
		{"vni too big", func(c *Config) { c.VNI = 1 << 24 }, "1..16777215"},
		{"CNI vxlan port", func(c *Config) { c.Port = 4789 }, "port 4789 is the IANA VXLAN port"},
		{"flannel-style port", func(c *Config) { c.Port = 8472 }, "port 8472"},
		{"other egress port", func(c *Config) { c.Port = 7789 }, "port 7789"},
		{"split steer mask", func(c *Config) { c.SteerMask = 0x0101 }, "contiguous"},
		{"two reply bits", func(c *Config) { c.ReplyMark = 0x3000 }, "exactly one bit"},
		{"reply inside steer", func(c *Config) { c.ReplyMark = 0x1 }, "overlaps steer mask"},
		{"proxy mark", func(c *Config) { c.ReplyMark = 0x4000 }, "Kubernetes service proxy"},
		{"Calico's marks", func(c *Config) { c.SteerMask = 0x00ff0000 }, "Calico's default mark mask"},
		{"Cilium's magic marks", func(c *Config) { c.SteerMask = 0x0300 }, "Cilium's magic marks"},
		{"the old default beside the VPC CNI", func(c *Config) { c.SteerMask = 0xff }, "AWS VPC CNI's default connmark 0x80"},
		{"table in system range", func(c *Config) { c.TableBase = 200 }, "253..255"},
		{"return table main", func(c *Config) { c.ReturnTable = 254 }, "return table 254"},
		{"return table inside gateways", func(c *Config) { c.ReturnTable = c.TableBase + 3 }, "inside the gateway tables"},
		{"priority after main", func(c *Config) { c.RulePriority = 32766 }, "before the main table"},
		{"tiny mtu", func(c *Config) { c.MTU = 100 }, "mtu 100"},
		{"relative proc-sys dir", func(c *Config) { c.ProcSysDir = "host/proc/sys" }, `proc-sys directory "host/proc/sys": want an absolute path`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.VNI, c.Port, c.RulePriority = 0, 4789, 0
	err := c.Validate()
	for _, want := range []string{"vni 0", "port 4789", "rule priority 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestSteerMarks(t *testing.T) {
	c := DefaultConfig()
	c.SteerMask = 0x00f0
	if got := c.maxGateways(); got != 14 {
		t.Errorf("maxGateways = %d, want 14 (15 is the egress interface's)", got)
	}
	if got := c.steerMark(c.egressIndex()); got != 0xf0 {
		t.Errorf("egress mark = %#x, want 0xf0", got)
	}
	if got := c.steerMark(3); got != 0x30 {
		t.Errorf("steerMark(3) = %#x, want 0x30", got)
	}
}
