package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestServiceCIDRDetectionWaitsForTheAPIServer: an agent that starts while the API server fails its
// requests keeps asking whether it serves ServiceCIDRs and takes the answer once it comes, instead of
// going without the service range for its whole life (it did: the first failure answered "no").
func TestServiceCIDRDetectionWaitsForTheAPIServer(t *testing.T) {
	const failures = 3
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= failures {
			http.Error(w, "etcdserver: leader changed", http.StatusInternalServerError)
			return
		}
		if r.URL.Path != "/apis/networking.k8s.io/v1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "networking.k8s.io/v1",
			APIResources: []metav1.APIResource{{Name: "servicecidrs", Kind: "ServiceCIDR", Verbs: []string{"get", "list", "watch"}}},
		})
	}))
	defer srv.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !waitServesServiceCIDRs(ctx, &rest.Config{Host: srv.URL}, log, 10*time.Millisecond) {
		t.Fatalf("ServiceCIDRs not detected after %d calls, the first %d failed", calls.Load(), failures)
	}
	if got := calls.Load(); got != failures+1 {
		t.Errorf("%d calls; want %d (each failure asked again once)", got, failures+1)
	}
}
