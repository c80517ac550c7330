package azure

import (
	"github.com/egressgw/egressgw/providers/internal/grantcheck"
	"strings"
	"testing"
)

// TestRoleDefinitionForm checks the example role's form: a custom role of single, named actions (no
// wildcards, no data actions) assignable to resource groups, not to a whole subscription.
func TestRoleDefinitionForm(t *testing.T) {
	r, err := loadRole()
	must(t, err)
	if !r.IsCustom || r.Name == "" || len(r.DataActions) > 0 || len(r.NotActions) > 0 {
		t.Errorf("want a named custom role with actions only, got %+v", r)
	}
	for _, a := range r.Actions {
		if strings.Contains(a, "*") || !strings.HasPrefix(a, "Microsoft.Compute/") && !strings.HasPrefix(a, "Microsoft.Network/") {
			t.Errorf("%q is not one Compute or Network action", a)
		}
	}
	for _, s := range r.AssignableScopes {
		if !strings.Contains(s, "/resourceGroups/") {
			t.Errorf("assignable scope %q is wider than a resource group", s)
		}
	}
}

// roleWording words the role check's mistakes.
var roleWording = grantcheck.Wording{Document: roleFile,
	Missing: func(action string) string { return "the provider needs " + action + " but the role does not grant it" },
	Extra:   func(action string) string { return "the role grants " + action + ", which the provider never needs" },
}

// checkRoleAgainst compares the actions the simulators checked during this package's tests with the
// role: the role must grant each, and nothing the provider never needs.
func checkRoleAgainst(seen map[string]bool, granted []string) error {
	return grantcheck.Compare(seen, granted, roleWording)
}

func TestRoleCheckCatchesBothMistakes(t *testing.T) {
	seen := map[string]bool{"Microsoft.Network/networkInterfaces/read": true, "Microsoft.Network/networkInterfaces/write": true}
	if err := checkRoleAgainst(seen, []string{"Microsoft.Network/networkInterfaces/read"}); err == nil || !strings.Contains(err.Error(), "does not grant it") {
		t.Errorf("a missing action passed: %v", err)
	}
	err := checkRoleAgainst(seen, []string{"Microsoft.Network/networkInterfaces/read", "Microsoft.Network/networkInterfaces/write", "Microsoft.Network/networkInterfaces/delete"})
	if err == nil || !strings.Contains(err.Error(), "grants Microsoft.Network/networkInterfaces/delete") {
		t.Errorf("an extra action passed: %v", err)
	}
	if err := checkRoleAgainst(seen, []string{"Microsoft.Network/networkInterfaces/read", "Microsoft.Network/networkInterfaces/write"}); err != nil {
		t.Errorf("an exact role failed: %v", err)
	}
}

// TestMain runs the tests, then compares every action the simulators checked with the role definition
// (after a full run only: see grantcheck.Main).
func TestMain(m *testing.M) {
	grantcheck.Main(m, "role definition check", func() error {
		r, err := loadRole()
		if err != nil {
			return err
		}
		return checkRoleAgainst(seenActions.Set(), r.Actions)
	})
}
