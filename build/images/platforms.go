package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// defaultPlatforms are the platforms `make images` builds into each image's index.
const defaultPlatforms = "linux/amd64,linux/arm64"

// supportedArchs are the architectures whose Go binaries and Debian packages the images are made of
// (the GOARCH and Debian names agree for these two).
var supportedArchs = map[string]bool{"amd64": true, "arm64": true}

// parsePlatforms reads -platforms: a comma-separated list of linux/ARCH, each at most once.
func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		osName, arch, ok := strings.Cut(f, "/")
		if !ok || osName != "linux" || !supportedArchs[arch] {
			return nil, fmt.Errorf("-platforms: %q is not a supported platform; want a comma-separated list of linux/amd64 and linux/arm64", f)
		}
		if seen[arch] {
			return nil, fmt.Errorf("-platforms: %s is listed twice", f)
		}
		seen[arch] = true
		out = append(out, v1.Platform{OS: osName, Architecture: arch})
	}
	return out, nil
}

// apt runs apt-cache and apt-get for one architecture. This machine's own architecture uses its apt as
// it is; another uses a private apt state (its own package lists, fetched from this machine's sources
// with the architecture set), so that the machine's dpkg architectures and its apt lists stay as they
// are and no foreign package is ever installed: the images only download and unpack .debs.
type apt struct {
	arch string
	opts []string // -o options of the private state; none for the native architecture
}

// nativeArch is this machine's Debian architecture.
func nativeArch(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg", "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg --print-architecture: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// aptFor returns the apt of arch; for a foreign arch it updates the private lists under stateDir first.
func aptFor(ctx context.Context, arch, stateDir string) (apt, error) {
	native, err := nativeArch(ctx)
	if err != nil || arch == native {
		return apt{arch: arch}, err
	}
	dir := filepath.Join(stateDir, "apt-"+arch)
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return apt{}, err
		}
	}
	status := filepath.Join(dir, "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		return apt{}, err
	}
	a := apt{arch: arch, opts: []string{
		"-o", "APT::Architecture=" + arch, "-o", "APT::Architectures::=" + arch,
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"), "-o", "Dir::State::status=" + status,
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
	}}
	if out, err := a.command(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
		return apt{}, fmt.Errorf("apt-get update for %s (private lists in %s): %w\n%s", arch, dir, err, out)
	}
	return a, nil
}

// command is an apt-get or apt-cache command with the architecture's options.
func (a apt) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, tool, append(append([]string{}, a.opts...), args...)...)
}
