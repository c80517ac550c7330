package nodeagent

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The throughput benchmark shares the machine with whatever else runs on it. Before each round it waits
// (up to quietWait) for a second in which at least quietIdle of the machine's CPU time is idle, so that
// a burst of other work does not fall on one path of a round only.
const (
	quietIdle = 0.70
	quietWait = 30 * time.Second
	// userHZ is the unit of /proc/stat (USER_HZ, 100 on every Linux architecture we run on).
	userHZ = 100
)

// cpuTimes is the machine's CPU time so far, in CPU-seconds, from the first line of /proc/stat.
type cpuTimes struct{ busy, total float64 }

func readCPUTimes(tb testing.TB) cpuTimes {
	tb.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	// cpu user nice system idle iowait irq softirq steal ...
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		tb.Fatalf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, s := range f[1:9] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			tb.Fatalf("/proc/stat: %v", err)
		}
		t.total += v / userHZ
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v / userHZ
		}
	}
	return t
}

// since returns the busy CPU-seconds and the share of idle time between t and now.
func (t cpuTimes) since(now cpuTimes) (busy, idle float64) {
	busy, total := now.busy-t.busy, now.total-t.total
	if total <= 0 {
		return busy, 0
	}
	return busy, 1 - busy/total
}

// waitQuiet samples the machine a second at a time until it is at least quietIdle idle or quietWait
// has passed. It returns the last sample's idle share and whether that was quiet enough.
func waitQuiet(tb testing.TB) (idle float64, quiet bool) {
	tb.Helper()
	for deadline := time.Now().Add(quietWait); ; {
		before := readCPUTimes(tb)
		time.Sleep(time.Second)
		_, idle = before.since(readCPUTimes(tb))
		if idle >= quietIdle || time.Now().After(deadline) {
			return idle, idle >= quietIdle
		}
	}
}

// loadAverage is the machine's one-minute load average.
func loadAverage(tb testing.TB) float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		tb.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
