package cnilab

import (
	"context"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/invoke"
)

// RecordingExec is libcni's own DefaultExec that also keeps each plugin's stdout, so a test can compare
// what the bridge returned with what egressgw-cni returned.
type RecordingExec struct {
	*invoke.DefaultExec
	mu      sync.Mutex
	outputs []pluginOutput
}

type pluginOutput struct {
	plugin  string
	command string
	stdout  []byte
}

// ExecPlugin runs the plugin and records its stdout.
func (e *RecordingExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	out, err := e.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, environ)
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
	return out, err
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
