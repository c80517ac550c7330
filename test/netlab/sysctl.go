package netlab

import (
	"fmt"
	"os"
	"strings"
)

// writeSysctl writes "a.b.c=value" to /proc/sys/a/b/c. /proc/sys/net follows the network namespace of the
// thread that opens the file, so callers run it inside Namespace.Do.
func writeSysctl(setting string) error {
	key, value, ok := strings.Cut(setting, "=")
	if !ok {
		return fmt.Errorf("sysctl %q: want key=value", setting)
	}
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", setting, err)
	}
	return nil
}

// readSysctl reads /proc/sys/a/b/c for key "a.b.c", inside the namespace of the calling thread.
func readSysctl(key string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	return strings.TrimSpace(string(b)), err
}
