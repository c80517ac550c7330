package uninstallwait

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/test/envtest"
)

func TestRolledOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		gen    int64
		status appsv1.DaemonSetStatus
		want   bool
		why    string
	}{
		{"not observed", 2, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberReady: 3}, false, "generation 2"},
		{"old pods", 1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 2, NumberReady: 3}, false, "2 of 3 nodes run the current pod"},
		{"uninstall still running", 1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberReady: 1}, false, "1 of 3 nodes are done"},
		{"done", 1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberReady: 3}, true, "3 of 3"},
		{"no nodes", 1, appsv1.DaemonSetStatus{ObservedGeneration: 1}, true, "0 of 0"},
	} {
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: tc.gen}, Status: tc.status}
		got, why := RolledOut(ds)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: RolledOut = %v, %q; want %v, containing %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}

// TestWaitFollowsTheDaemonSetStatus: against a real API server, Wait times out naming what is missing
// while a node is not done, and returns once the status (the DaemonSet controller's part, written by
// the test) says every node is.
func TestWaitFollowsTheDaemonSetStatus(t *testing.T) {
	env := envtest.Start(t)
	ctx := context.Background()
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "egressgw-uninstall", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "u"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "u"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "done", Image: "egressgw-agent"}}}},
		},
	}
	if err := env.Client.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	setStatus := func(ready int32) {
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: ready}
		if err := env.Client.Status().Update(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := client.ObjectKeyFromObject(ds)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := Wait(short, env.Client, key, 50*time.Millisecond, log)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 nodes are done") {
		t.Fatalf("Wait with one node left = %v; want a timeout naming 1 of 2 nodes", err)
	}
	done := make(chan error, 1)
	go func() { done <- Wait(ctx, env.Client, key, 50*time.Millisecond, log) }()
	setStatus(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait after every node is done: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return within 30 s of every node being done")
	}
}
