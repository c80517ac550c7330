package gcpsim

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

const (
	podRange = `{"ipCidrRange":"10.4.1.0/24","subnetworkRangeName":"pods"}`
	zoneA    = "us-central1-a"
)

// TestPatchSemantics: a PATCH without aliasIpRanges leaves them alone; an explicitly empty list removes
// them all, as Compute Engine does.
func TestPatchSemantics(t *testing.T) {
	_, c := start(t, Options{})
	fp := c.fingerprint(zoneA, "gw-a1")
	status, op := c.patch(zoneA, "gw-a1", "", fmt.Sprintf(`{"fingerprint":%q}`, fp))
	if status != 200 || op["status"] != OpDone || opError(op) != "" {
		t.Fatalf("PATCH without aliasIpRanges: %d %v", status, op)
	}
	if got := aliasesOf(c.nic0(zoneA, "gw-a1")); !slices.Equal(got, []string{"10.4.1.0/24"}) {
		t.Fatalf("an absent aliasIpRanges changed them: %v", got)
	}
	if c.fingerprint(zoneA, "gw-a1") != fp {
		t.Fatal("a PATCH that changed nothing changed the fingerprint")
	}
	status, op = c.patch(zoneA, "gw-a1", "", fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[]}`, fp))
	if status != 200 || opError(op) != "" {
		t.Fatalf("PATCH with an empty aliasIpRanges: %d %v", status, op)
	}
	if got := aliasesOf(c.nic0(zoneA, "gw-a1")); len(got) != 0 {
		t.Fatalf("an explicit empty aliasIpRanges left %v", got)
	}
}

func TestFingerprintIsRequiredAndChecked(t *testing.T) {
	sim, c := start(t, Options{})
	body := `{"aliasIpRanges":[` + podRange + `,{"ipCidrRange":"10.0.1.50"}]`
	if status, e := c.patch(zoneA, "gw-a1", "", body+`}`); status != 400 || reason(e) != ReasonRequired {
		t.Fatalf("without a fingerprint: %d %v", status, e)
	}
	if status, e := c.patch(zoneA, "gw-a1", "", body+`,"fingerprint":"stale"}`); status != 412 || reason(e) != ReasonConditionNotMet {
		t.Fatalf("with a wrong fingerprint: %d %v", status, e)
	}
	fp := c.fingerprint(zoneA, "gw-a1")
	sim.StaleFingerprints(1)
	if status, e := c.patch(zoneA, "gw-a1", "", body+fmt.Sprintf(`,"fingerprint":%q}`, fp)); status != 412 {
		t.Fatalf("after a concurrent writer: %d %v", status, e)
	}
	if _, ok := sim.Where(ip("10.0.1.50")); ok {
		t.Fatal("a refused PATCH changed the NIC")
	}
}

func TestRequestIDReturnsTheFirstOperation(t *testing.T) {
	sim, c := start(t, Options{})
	const id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
	body := fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[%s,{"ipCidrRange":"10.0.1.50"}]}`, c.fingerprint(zoneA, "gw-a1"), podRange)
	_, first := c.patch(zoneA, "gw-a1", id, body)
	status, again := c.patch(zoneA, "gw-a1", id, body) // its fingerprint is stale now: only the requestId saves it
	if status != 200 || again["name"] != first["name"] {
		t.Fatalf("a repeated requestId: %d %v, first operation %v", status, again, first["name"])
	}
	if n := len(sim.Operations()); n != 1 {
		t.Fatalf("want one operation, simulator has %d", n)
	}
	if status, e := c.patch(zoneA, "gw-a1", "not-a-uuid", body); status != 400 {
		t.Fatalf("a requestId that is no UUID: %d %v", status, e)
	}
}

func TestAliasRules(t *testing.T) {
	sim, c := start(t, Options{})
	cases := []struct {
		name, ranges, status, opCode string
	}{
		{"outside the primary range", `{"ipCidrRange":"10.0.2.50"}`, "400", ""},
		{"reserved gateway address", `{"ipCidrRange":"10.0.1.1"}`, "400", ""},
		{"the NIC's own primary IP", `{"ipCidrRange":"10.0.1.11"}`, "400", ""},
		{"secondary range without its name", `{"ipCidrRange":"10.4.9.0/24"}`, "400", ""},
		{"unknown secondary range", `{"ipCidrRange":"10.4.9.0/24","subnetworkRangeName":"nope"}`, "400", ""},
		{"another VM's primary IP", `{"ipCidrRange":"10.0.1.12"}`, "200", CodeIPInUse},
		{"another VM's alias", `{"ipCidrRange":"10.0.1.140/32"}`, "200", CodeIPInUse},
		{"another VM's pod range", `{"ipCidrRange":"10.4.2.0/25","subnetworkRangeName":"pods"}`, "200", CodeIPInUse},
		{"a free address", `{"ipCidrRange":"10.0.1.50"}`, "200", ""},
	}
	for _, tc := range cases {
		body := fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[%s,%s]}`, c.fingerprint(zoneA, "gw-a1"), podRange, tc.ranges)
		status, out := c.patch(zoneA, "gw-a1", "", body)
		if fmt.Sprint(status) != tc.status || opError(out) != tc.opCode {
			t.Errorf("%s: want %s %q, got %d %q (%v)", tc.name, tc.status, tc.opCode, status, opError(out), out)
		}
	}
	if h, ok := sim.Where(ip("10.0.1.50")); !ok || h.Instance != "gw-a1" || h.Range.Bits() != 32 {
		t.Fatalf("10.0.1.50 is on %+v", h)
	}
	if holders := sim.HoldersOf(ip("10.0.1.12")); len(holders) != 1 || !holders[0].Primary {
		t.Fatalf("a refused alias left two holders: %+v", holders)
	}
}

func TestAliasLimitPerInterface(t *testing.T) {
	_, c := start(t, Options{})
	ranges := podRange
	for i := range AliasRangesPerInterface {
		ranges += fmt.Sprintf(`,{"ipCidrRange":"10.4.%d.0/24","subnetworkRangeName":"pods"}`, 100+i)
	}
	status, e := c.patch(zoneA, "gw-a1", "", fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[%s]}`, c.fingerprint(zoneA, "gw-a1"), ranges))
	if status != 400 || reason(e) != ReasonInvalid {
		t.Fatalf("%d alias ranges: %d %v", AliasRangesPerInterface+1, status, e)
	}
}

// TestOperationLifecycle: a write takes effect only when its operation is DONE; a second write meanwhile
// is refused as resourceNotReady.
func TestOperationLifecycle(t *testing.T) {
	clock := manualClock()
	sim, c := start(t, Options{Clock: clock.Now})
	sim.SetOperationLatency(3 * time.Second)
	body := fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[%s,{"ipCidrRange":"10.0.1.50"}]}`, c.fingerprint(zoneA, "gw-a1"), podRange)
	_, op := c.patch(zoneA, "gw-a1", "", body)
	path := base + "zones/" + zoneA + "/operations/" + op["name"].(string)
	for _, step := range []struct {
		after time.Duration
		want  string
	}{{0, OpPending}, {time.Second, OpRunning}, {2 * time.Second, OpDone}} {
		clock.Step(step.after)
		if _, got := c.do("GET", path, ""); got["status"] != step.want {
			t.Fatalf("after %s more: want %s, got %v", step.after, step.want, got["status"])
		}
		if _, ok := sim.Where(ip("10.0.1.50")); ok != (step.want == OpDone) {
			t.Fatalf("status %s but the alias is there: %v", step.want, ok)
		}
		if step.want == OpRunning {
			if status, e := c.patch(zoneA, "gw-a1", "", body); status != 400 || reason(e) != ReasonResourceNotReady {
				t.Fatalf("a write during the operation: %d %v", status, e)
			}
		}
	}
}

func TestHungAndDeletedInstances(t *testing.T) {
	clock := manualClock()
	sim, c := start(t, Options{Clock: clock.Now})
	must(t, sim.SetAliases(zoneA, "gw-a1", "nic0", []AliasSpec{{IPCIDRRange: "10.0.1.50"}}))
	sim.SetHung(zoneA, "gw-a1", true)
	_, op := c.patch(zoneA, "gw-a1", "", fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[]}`, c.fingerprint(zoneA, "gw-a1")))
	clock.Step(time.Hour)
	path := base + "zones/" + zoneA + "/operations/" + op["name"].(string)
	if _, got := c.do("GET", path, ""); got["status"] != OpRunning {
		t.Fatalf("an operation on a hung VM: %v", got["status"])
	}
	sim.DeleteInstance(zoneA, "gw-a1", 30*time.Second)
	clock.Step(31 * time.Second)
	_, got := c.do("GET", path, "")
	if got["status"] != OpDone || opError(got) != CodeResourceNotFound {
		t.Fatalf("the operation of a deleted VM: %v", got)
	}
	if _, ok := sim.Where(ip("10.0.1.50")); ok {
		t.Fatal("a deleted VM kept its alias")
	}
	if status, _ := c.do("GET", base+"zones/"+zoneA+"/instances/gw-a1", ""); status != 404 {
		t.Fatalf("a deleted VM: %d", status)
	}
}

func TestIAMAndCredentials(t *testing.T) {
	sim, c := start(t, Options{Callers: map[string][]string{"token-manager": {"compute.instances.get", "compute.instances.updateNetworkInterface"}}})
	body := fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[]}`, c.fingerprint(zoneA, "gw-a1"))
	status, e := c.patch(zoneA, "gw-a1", "", body)
	if status != 403 || reason(e) != ReasonForbidden {
		t.Fatalf("setting alias ranges without compute.subnetworks.use: %d %v", status, e)
	}
	if got := sim.Permissions(); got["compute.subnetworks.use"] != 1 || got["compute.instances.updateNetworkInterface"] != 1 {
		t.Fatalf("permissions recorded: %v", got)
	}
	c.token = "someone-else"
	if status, _ := c.do("GET", base+"zones/"+zoneA+"/instances/gw-a1", ""); status != 401 {
		t.Fatalf("an unknown token: %d", status)
	}
	c.token = ""
	if status, _ := c.do("GET", base+"zones/"+zoneA+"/instances/gw-a1", ""); status != 401 {
		t.Fatalf("no token: %d", status)
	}
}

func TestThrottlingAndQuotas(t *testing.T) {
	sim, c := start(t, Options{})
	get := base + "zones/" + zoneA + "/instances/gw-a1"
	sim.Throttle("instances.get", 1)
	if status, e := c.do("GET", get, ""); status != http.StatusTooManyRequests || reason(e) != ReasonRateLimitExceeded {
		t.Fatalf("throttled: %d %v", status, e)
	}
	sim.InjectError("", http.StatusServiceUnavailable, ReasonBackendError, 1)
	if status, _ := c.do("GET", get, ""); status != 503 {
		t.Fatalf("injected 503: %d", status)
	}
	sim.SetRateQuota(QuotaRead, 2)
	c.do("GET", get, "")
	c.do("GET", get, "")
	if status, e := c.do("GET", get, ""); status != http.StatusForbidden || reason(e) != ReasonRateLimitExceeded {
		t.Fatalf("over the read quota: %d %v", status, e)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
