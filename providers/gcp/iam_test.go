package gcp

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// checkRoleAgainst compares the permissions the simulators saw being needed with the role: the role must
// grant each, and nothing more.
func checkRoleAgainst(seen map[string]bool, granted []string) error {
	var problems []string
	for perm := range seen {
		if !slices.Contains(granted, perm) {
			problems = append(problems, "the provider needs "+perm+" but the role does not grant it")
		}
	}
	for _, perm := range granted {
		if !seen[perm] {
			problems = append(problems, "the role grants "+perm+", which no call of the provider needs")
		}
	}
	slices.Sort(problems)
	if len(problems) > 0 {
		return fmt.Errorf("%s:\n  %s", roleFile, strings.Join(problems, "\n  "))
	}
	return nil
}

// TestMain runs the tests, then compares every permission the simulators saw needed with the custom
// role. It does so only for a full run: a run narrowed with -run sees only part of the provider's calls.
func TestMain(m *testing.M) {
	code := m.Run()
	if f := flag.Lookup("test.run"); code != 0 || f == nil || f.Value.String() != "" {
		os.Exit(code)
	}
	r, err := loadRole()
	if err == nil {
		seenPermissions.Lock()
		err = checkRoleAgainst(seenPermissions.m, r.IncludedPermissions)
		seenPermissions.Unlock()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: IAM role check:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func TestRoleCheckCatchesBothMistakes(t *testing.T) {
	seen := map[string]bool{"compute.instances.get": true, "compute.instances.updateNetworkInterface": true}
	if err := checkRoleAgainst(seen, []string{"compute.instances.get"}); err == nil || !strings.Contains(err.Error(), "does not grant") {
		t.Errorf("a missing permission passed: %v", err)
	}
	err := checkRoleAgainst(seen, []string{"compute.instances.get", "compute.instances.updateNetworkInterface", "compute.instances.delete"})
	if err == nil || !strings.Contains(err.Error(), "grants compute.instances.delete") {
		t.Errorf("an extra permission passed: %v", err)
	}
	if err := checkRoleAgainst(seen, []string{"compute.instances.get", "compute.instances.updateNetworkInterface"}); err != nil {
		t.Errorf("an exact role failed: %v", err)
	}
}

func TestRoleFileIsACustomRole(t *testing.T) {
	r, err := loadRole()
	if err != nil {
		t.Fatal(err)
	}
	if r.Title == "" || r.Stage != "GA" || len(r.IncludedPermissions) == 0 {
		t.Fatalf("%s: want a title, stage GA and permissions: %+v", roleFile, r)
	}
	for _, p := range r.IncludedPermissions {
		if !strings.HasPrefix(p, "compute.") || strings.Contains(p, "*") {
			t.Errorf("%q is not one compute permission", p)
		}
	}
}
