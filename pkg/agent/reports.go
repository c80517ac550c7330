package agent

import (
	"log/slog"
	"maps"
	"strings"
	"sync"

	"github.com/egressgw/egressgw/pkg/nodeagent"
)

// reportLog logs the view's problems and the datapath's warnings when they appear and when they go, not
// on every sync, so that a standing condition costs one line, and keeps the current warnings by reason
// for the metric.
type reportLog struct {
	log      *slog.Logger
	mu       sync.Mutex
	current  map[string]bool
	byReason map[string]int
}

func newReportLog(log *slog.Logger) *reportLog {
	return &reportLog{log: log, current: map[string]bool{}, byReason: map[string]int{}}
}

func (r *reportLog) report(problems []Problem, warnings []nodeagent.Warning) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := make(map[string]bool, len(problems)+len(warnings))
	byReason := map[string]int{}
	for _, p := range problems {
		key := "problem\x00" + p.Object + "\x00" + p.Message
		now[key] = true
		if !r.current[key] {
			r.log.Warn("cannot use part of the cluster's state", "object", p.Object, "problem", p.Message)
		}
	}
	for _, w := range warnings {
		key := "warning\x00" + w.String()
		now[key] = true
		byReason[w.Reason]++
		if !r.current[key] {
			r.log.Warn("datapath warning", "policy", w.Policy, "reason", w.Reason, "message", w.Message)
		}
	}
	for key := range r.current {
		if !now[key] {
			r.log.Info("resolved", "was", strings.ReplaceAll(key, "\x00", ": "))
		}
	}
	r.current, r.byReason = now, byReason
}

// reasons returns the number of current warnings per reason.
func (r *reportLog) reasons() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.byReason)
}
