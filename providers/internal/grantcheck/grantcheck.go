// Package grantcheck is the check that each provider's example IAM document (the AWS policy, the GCP
// custom role, the Azure role definition) grants exactly what the provider's tests needed: the
// simulators record every permission a call needed; after a full test run the document must grant each
// of them and nothing more. Only the mechanism is shared; each provider names its grants its own way.
package grantcheck

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Seen collects the permissions (actions, IAM permissions, RBAC actions) the simulators of one test
// package saw needed. Safe for concurrent use: parallel tests record into it.
type Seen struct {
	mu sync.Mutex
	m  map[string]bool
}

// Record adds the permissions of a simulator's counts (permission -> calls that needed it).
func (s *Seen) Record(counts map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	for p := range counts {
		s.m[p] = true
	}
}

// Set is a copy of what was recorded.
func (s *Seen) Set() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// Wording is how a provider's check words its two mistakes.
type Wording struct {
	// Document is the example file checked, named in the error.
	Document string
	// Missing is the problem of a needed permission the document does not grant; Extra of a granted one
	// that nothing needed.
	Missing, Extra func(permission string) string
}

// Compare reports every permission seen but not granted and every one granted but not seen, sorted, as
// one error naming the document; nil when they match exactly.
func Compare(seen map[string]bool, granted []string, w Wording) error {
	var problems []string
	for p := range seen {
		if !slices.Contains(granted, p) {
			problems = append(problems, w.Missing(p))
		}
	}
	for _, p := range granted {
		if !seen[p] {
			problems = append(problems, w.Extra(p))
		}
	}
	slices.Sort(problems)
	if len(problems) > 0 {
		return fmt.Errorf("%s:\n  %s", w.Document, strings.Join(problems, "\n  "))
	}
	return nil
}

// Main is a test package's TestMain: it runs the tests and then, after a passing full run, check (a
// Compare of what the tests saw). A run narrowed with -run sees only part of the provider's calls, so
// it is not checked. A failed check fails the run, labelled what.
func Main(m *testing.M, what string, check func() error) {
	code := m.Run()
	if f := flag.Lookup("test.run"); code != 0 || f == nil || f.Value.String() != "" {
		os.Exit(code)
	}
	if err := check(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: %v\n", what, err)
		os.Exit(1)
	}
	os.Exit(code)
}
