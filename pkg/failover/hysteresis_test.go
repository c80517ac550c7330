package failover

import (
	"testing"
	"time"
)

func TestHysteresis(t *testing.T) {
	t0 := time.Unix(1000, 0)
	step := func(i int) time.Time { return t0.Add(time.Duration(i) * 200 * time.Millisecond) }
	cases := []struct {
		name    string
		probes  string // '+' success, '-' failure
		verdict Verdict
		changes int
	}{
		{"never probed", "", Unknown, 0},
		{"first success is enough", "+", Healthy, 1},
		{"failures before any success", "---", Unhealthy, 1},
		{"one lost probe does not move anything", "++-+", Healthy, 1},
		{"two lost probes in a row do not either", "+--+--+", Healthy, 1},
		{"three in a row do", "+---", Unhealthy, 2},
		{"one success does not bring a node back", "+---+", Unhealthy, 2},
		{"two successes do", "+---++", Healthy, 3},
		{"flapping probes give no flapping verdict", "+---+-+-+-+-", Unhealthy, 2},
		{"more failures change nothing more", "+------", Unhealthy, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHysteresis(3, 2)
			changes := 0
			for i, c := range tc.probes {
				if _, changed := h.Observe("gw-1", c == '+', step(i)); changed {
					changes++
				}
			}
			if got := h.Verdict("gw-1"); got != tc.verdict {
				t.Errorf("verdict %v, want %v", got, tc.verdict)
			}
			if changes != tc.changes {
				t.Errorf("%d changes, want %d", changes, tc.changes)
			}
		})
	}
}

func TestHysteresisReportsLastSuccess(t *testing.T) {
	h := NewHysteresis(3, 2)
	t0 := time.Unix(1000, 0)
	h.Observe("gw-1", true, t0)
	h.Observe("gw-1", false, t0.Add(200*time.Millisecond))
	h.Observe("gw-1", false, t0.Add(400*time.Millisecond))
	c, changed := h.Observe("gw-1", false, t0.Add(600*time.Millisecond))
	if !changed || c.Verdict != Unhealthy || !c.LastOK.Equal(t0) {
		t.Errorf("change %+v (changed=%v), want Unhealthy with LastOK %v", c, changed, t0)
	}
	h.Forget("gw-1")
	if h.Verdict("gw-1") != Unknown {
		t.Error("a forgotten node keeps its verdict")
	}
}
