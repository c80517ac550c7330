package ec2sim

import (
	"strings"
	"testing"
)

func TestModelRefusesWhatAWSWouldNeverHaveLetExist(t *testing.T) {
	const subnets = "subnets: [{id: s1, vpc: v1, cidr: 10.0.1.0/24, zone: z1}]\n"
	inst := func(typ, ips string) string {
		return subnets + "instances: [{id: i1, type: " + typ + ", interfaces: [{id: e1, subnet: s1, ips: " + ips + "}]}]\n"
	}
	cases := map[string]struct{ model, want string }{
		"unknown field":        {subnets + "vpcs: []\n", "unknown field"},
		"bad cidr":             {"subnets: [{id: s1, vpc: v1, cidr: 10.0.1.7/24, zone: z1}]\n", "not an IPv4 network address"},
		"ip outside subnet":    {inst("m5.large", "[10.0.2.10]"), "does not fall within"},
		"reserved ip":          {inst("m5.large", "[10.0.1.2]"), "reserved"},
		"too many ips":         {inst("t3.micro", "[10.0.1.10, 10.0.1.11, 10.0.1.12]"), "allows 1 to 2"},
		"unknown type":         {inst("x9.huge", "[10.0.1.10]"), "unknown instance type"},
		"unknown subnet":       {"instances: [{id: i1, type: m5.large, interfaces: [{id: e1, subnet: s9, ips: [10.0.1.10]}]}]\n", "unknown subnet"},
		"ip on two interfaces": {subnets + "instances: [{id: i1, type: m5.large, interfaces: [{id: e1, subnet: s1, ips: [10.0.1.10]}, {id: e2, subnet: s1, ips: [10.0.1.10]}]}]\n", "already on e1"},
		"eip on foreign ip":    {inst("m5.large", "[10.0.1.10]") + "elasticIPs: [{allocationID: a1, publicIP: 192.0.2.1, interface: e1, privateIP: 10.0.1.99}]\n", "not an address of e1"},
	}
	for name, tc := range cases {
		m, err := ParseModel([]byte(tc.model))
		if err == nil {
			_, err = New(m, Options{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error about %q, got %v", name, tc.want, err)
		}
	}
}

func TestExampleModelLoads(t *testing.T) {
	if _, err := New(loadTestModel(t), Options{}); err != nil {
		t.Fatal(err)
	}
}
