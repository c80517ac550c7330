package cnilab

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
)

// RecordingExec is libcni's own DefaultExec that also keeps each plugin's stdout, so a test can compare
// what the bridge returned with what egressgw-cni returned, and each run's duration.
type RecordingExec struct {
	*invoke.DefaultExec
	mu        sync.Mutex
	outputs   []pluginOutput
	durations map[string][]time.Duration // by plugin and command, "egressgw-cni ADD"
}

type pluginOutput struct {
	plugin  string
	command string
	stdout  []byte
}

// ExecPlugin runs the plugin and records its stdout.
func (e *RecordingExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	start := time.Now()
	out, err := e.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, environ)
	took := time.Since(start)
	command := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			command = v
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.outputs) >= 64 { // bounded: tests look at the last few
		e.outputs = e.outputs[1:]
	}
	e.outputs = append(e.outputs, pluginOutput{plugin: filepath.Base(pluginPath), command: command, stdout: out})
	if e.durations == nil {
		e.durations = map[string][]time.Duration{}
	}
	key := filepath.Base(pluginPath) + " " + command
	if len(e.durations[key]) < 100_000 { // bounded: a test's worth of runs
		e.durations[key] = append(e.durations[key], took)
	}
	return out, err
}

// Durations are how long each run of plugin (its binary's name) for command took, in order.
func (e *RecordingExec) Durations(plugin, command string) []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.durations[plugin+" "+command]...)
}

// LastOutput is the last stdout of plugin (its binary's name) for command (ADD, DEL, ...).
func (e *RecordingExec) LastOutput(plugin, command string) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.outputs) - 1; i >= 0; i-- {
		if e.outputs[i].plugin == plugin && e.outputs[i].command == command {
			return e.outputs[i].stdout
		}
	}
	return nil
}
