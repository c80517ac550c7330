package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParsePlatforms(t *testing.T) {
	got, err := parsePlatforms(" linux/arm64,linux/amd64")
	if err != nil || len(got) != 2 || got[0].Architecture != "arm64" || got[1].Architecture != "amd64" {
		t.Errorf("parsePlatforms = %v, %v; want arm64 then amd64", got, err)
	}
	for in, want := range map[string]string{
		"linux/riscv64":           `"linux/riscv64" is not a supported platform`,
		"windows/amd64":           `"windows/amd64" is not a supported platform`,
		"amd64":                   `"amd64" is not a supported platform`,
		"linux/amd64,":            `"" is not a supported platform`,
		"linux/amd64,linux/amd64": "linux/amd64 is listed twice",
	} {
		if _, err := parsePlatforms(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePlatforms(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// TestDebFilesOfOneArchitecture: the .deb cache holds several architectures' files side by side; a
// build takes its architecture's and the architecture-independent ones only.
func TestDebFilesOfOneArchitecture(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"libc6_2.36-9_amd64.deb", "libc6_2.36-9_arm64.deb", "libc6-dev_2.36-9_arm64.deb",
		"ca-certificates_20250419_all.deb", "iptables_1.8.9-2_arm64.deb"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pkg, want := range map[string][]string{
		"libc6": {"libc6_2.36-9_arm64.deb"}, "libc6:arm64": {"libc6_2.36-9_arm64.deb"},
		"ca-certificates": {"ca-certificates_20250419_all.deb"}, "ipset": nil,
	} {
		var got []string
		for _, f := range debFiles(dir, pkg, "arm64") {
			got = append(got, filepath.Base(f))
		}
		if !slices.Equal(got, want) {
			t.Errorf("debFiles(%s, arm64) = %v, want %v", pkg, got, want)
		}
	}
}
