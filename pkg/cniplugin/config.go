// Package cniplugin is egressgw-cni, the chained CNI plugin that asks the node's egressgw agent to program
// a pod before the runtime starts it (DESIGN.md §3, docs/cni.md). cmd/cni is its main.
package cniplugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/egressgw/egressgw/pkg/cnirpc"
)

// PluginType is the "type" of egressgw-cni's entry in a conflist, and its binary's name.
const PluginType = "egressgw-cni"

// Defaults of the keys in the plugin's entry.
const (
	DefaultAddTimeout    = 10 * time.Second
	DefaultDeleteTimeout = 5 * time.Second
)

// SupportedVersions are the CNI spec versions that have chaining (prevResult); 1.1.0 adds STATUS and GC.
var SupportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// NetConf is the plugin's entry in the conflist. Every key but "type" is optional.
type NetConf struct {
	types.PluginConf
	// SocketPath is the agent's socket (default cnirpc.DefaultSocketPath).
	SocketPath string `json:"socketPath,omitempty"`
	// AddTimeout bounds ADD and CHECK, a Go duration ("10s").
	AddTimeout string `json:"addTimeout,omitempty"`
	// DeleteTimeout bounds DEL ("5s"): an unreachable or slow agent does not block pod deletion longer.
	DeleteTimeout string `json:"deleteTimeout,omitempty"`
	// LogLevel is debug, info (default), warn or error. Logs go to stderr, which the runtime keeps in its log.
	LogLevel string `json:"logLevel,omitempty"`
	// LogFile, when set, receives the logs too (appended).
	LogFile string `json:"logFile,omitempty"`
}

// Config is a parsed, validated NetConf.
type Config struct {
	Conf          NetConf
	RawPrevResult json.RawMessage // exactly the bytes the runtime sent, returned unchanged on ADD
	AddTimeout    time.Duration
	DeleteTimeout time.Duration
	LogLevel      slog.Level
}

// rawPrevResult keeps prevResult's bytes as the runtime wrote them.
type rawPrevResult struct {
	PrevResult json.RawMessage `json:"prevResult"`
}

// ParseConfig reads stdin's network configuration and names every invalid key.
func ParseConfig(stdin []byte) (*Config, error) {
	cfg := &Config{AddTimeout: DefaultAddTimeout, DeleteTimeout: DefaultDeleteTimeout, LogLevel: slog.LevelInfo}
	if err := json.Unmarshal(stdin, &cfg.Conf); err != nil {
		return nil, fmt.Errorf("parsing the network configuration: %w", err)
	}
	var raw rawPrevResult
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, fmt.Errorf("parsing the network configuration: %w", err)
	}
	if len(raw.PrevResult) > 0 && string(raw.PrevResult) != "null" {
		cfg.RawPrevResult = raw.PrevResult
	}
	if cfg.Conf.SocketPath == "" {
		cfg.Conf.SocketPath = cnirpc.DefaultSocketPath
	}
	var problems []string
	if !filepath.IsAbs(cfg.Conf.SocketPath) {
		problems = append(problems, fmt.Sprintf("socketPath %q must be an absolute path", cfg.Conf.SocketPath))
	}
	problems = parseTimeout(problems, "addTimeout", cfg.Conf.AddTimeout, &cfg.AddTimeout)
	problems = parseTimeout(problems, "deleteTimeout", cfg.Conf.DeleteTimeout, &cfg.DeleteTimeout)
	if cfg.Conf.LogLevel != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(cfg.Conf.LogLevel)); err != nil {
			problems = append(problems, fmt.Sprintf("logLevel %q must be debug, info, warn or error", cfg.Conf.LogLevel))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid egressgw-cni configuration: " + strings.Join(problems, "; "))
	}
	return cfg, nil
}

func parseTimeout(problems []string, key, value string, into *time.Duration) []string {
	if value == "" {
		return problems
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 || d > 5*time.Minute {
		return append(problems, fmt.Sprintf("%s %q must be a duration between 1ms and 5m, such as \"10s\"", key, value))
	}
	*into = d
	return problems
}
