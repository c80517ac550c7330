package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestSelectorMatches(t *testing.T) {
	sel := &LabelSelector{
		MatchLabels: map[string]LabelValue{"team": "payments"},
		MatchExpressions: []LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []LabelValue{"api", "db"}},
			{Key: "canary", Operator: metav1.LabelSelectorOpDoesNotExist},
		},
	}
	cases := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"team": "payments", "tier": "db"}, true},
		{map[string]string{"team": "payments", "tier": "web"}, false},
		{map[string]string{"team": "payments", "tier": "api", "canary": "1"}, false},
		{map[string]string{"tier": "api"}, false},
	}
	s, err := sel.Selector()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if got := s.Matches(labels.Set(tc.labels)); got != tc.want {
			t.Errorf("%v matched %v, want %v", tc.labels, got, tc.want)
		}
	}
}

func TestNilSelectorMatchesEverything(t *testing.T) {
	var sel *LabelSelector
	if sel.AsLabelSelector() != nil {
		t.Error("nil selector converted to non-nil")
	}
	s, err := sel.Selector()
	if err != nil || !s.Matches(labels.Set{"any": "thing"}) {
		t.Errorf("nil selector: %v, %v; want it to match everything", s, err)
	}
}

func TestSelectorRefusesWhatTheSchemaWouldRefuse(t *testing.T) {
	sel := &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "tier", Operator: "Equals"}}}
	if _, err := sel.Selector(); err == nil {
		t.Error("unknown operator accepted")
	}
}
