package gcp

import (
	"github.com/egressgw/egressgw/providers/internal/grantcheck"
	"strings"
	"testing"
)

// roleWording words the role check's mistakes.
var roleWording = grantcheck.Wording{Document: roleFile,
	Missing: func(perm string) string { return "the provider needs " + perm + " but the role does not grant it" },
	Extra:   func(perm string) string { return "the role grants " + perm + ", which no call of the provider needs" },
}

// checkRoleAgainst compares the permissions the simulators saw being needed with the role: the role must
// grant each, and nothing more.
func checkRoleAgainst(seen map[string]bool, granted []string) error {
	return grantcheck.Compare(seen, granted, roleWording)
}

// TestMain runs the tests, then compares every permission the simulators saw needed with the custom
// role (after a full run only: see grantcheck.Main).
func TestMain(m *testing.M) {
	grantcheck.Main(m, "IAM role check", func() error {
		r, err := loadRole()
		if err != nil {
			return err
		}
		return checkRoleAgainst(seenPermissions.Set(), r.IncludedPermissions)
	})
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
