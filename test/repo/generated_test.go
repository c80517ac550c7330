// Package repo_test holds checks on the repository as a whole.
package repo_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egressgw/egressgw/test/envtest"
)

// TestGeneratedFilesUpToDate copies the repository, runs `make generate` in the copy and fails when any
// file differs from the committed one, or appears or disappears: deepcopy code, CRDs and RBAC must be
// what controller-gen makes of the Go types and markers.
func TestGeneratedFilesUpToDate(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed: cannot run `make generate`")
	}
	root := envtest.RepoRoot()
	copyDir := t.TempDir()
	tracked := gitFiles(t, root)
	copyRepo(t, root, copyDir, tracked)

	cmd := exec.Command("make", "-s", "generate")
	cmd.Dir = copyDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make generate in a copy of the repository: %v\n%s", err, out)
	}
	var drift []string
	for _, rel := range union(tracked, listFiles(t, copyDir)) {
		committed, _ := os.ReadFile(filepath.Join(root, rel))
		fresh, _ := os.ReadFile(filepath.Join(copyDir, rel))
		if !bytes.Equal(committed, fresh) {
			drift = append(drift, rel)
		}
	}
	if len(drift) > 0 {
		t.Errorf("generated files differ from a fresh `make generate` (run it and commit the result):\n  %s",
			strings.Join(drift, "\n  "))
	}
}

// copyRepo copies the files git knows of (tracked, or new and not ignored), as a clean clone would have.
func copyRepo(t *testing.T, root, dst string, files []string) {
	t.Helper()
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func gitFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s (the check needs a git checkout): %v", root, err)
	}
	return strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
}

// listFiles lists the files below dir, relative to it.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(a, b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
