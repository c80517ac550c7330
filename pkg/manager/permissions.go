package manager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
)

// deniedMemory is how long a refused list or watch keeps the manager unready after it was last seen:
// the informers retry a refused list at least every minute (client-go's backoff: 30 s cap, jitter), so a refusal that
// persists is seen again well within it, and one that was fixed stops counting.
const deniedMemory = 2 * time.Minute

// deniedPermission is a permission the API server refused to the manager's informers.
type deniedPermission struct {
	Verb, Resource, Group, Namespace string
	Message                          string // the API server's own words, which name the user too
	typeDescription                  string // of the informer refused
	last                             time.Time
}

func (r deniedPermission) String() string {
	where := "cluster-wide"
	if r.Namespace != "" {
		where = "in namespace " + r.Namespace
	}
	group := r.Group
	if group == "" {
		group = "core"
	}
	return fmt.Sprintf("%s %s (API group %s) %s", r.Verb, r.Resource, group, where)
}

// permissions collects the lists and watches the API server refuses (RBAC): without them an informer
// never syncs and the manager would wait for its cache forever without a word. Each refusal is logged
// and recorded as a Warning Event on the leader election Lease once, and keeps /readyz failing.
type permissions struct {
	log      logr.Logger
	recorder record.EventRecorder
	lease    *coordinationv1.Lease // the object the Events are about

	mu      sync.Mutex
	refused map[string]deniedPermission
}

func newPermissions(log logr.Logger, recorder record.EventRecorder, le LeaderElection) *permissions {
	lease := &coordinationv1.Lease{TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{Namespace: le.Namespace, Name: le.ID}}
	return &permissions{log: log, recorder: recorder, lease: lease, refused: map[string]deniedPermission{}}
}

// watchError is the informers' WatchErrorHandler: refusals are recorded, anything else goes to client-go's
// default handler.
func (p *permissions) watchError(ctx context.Context, r *toolscache.Reflector, err error) {
	if !apierrors.IsForbidden(err) {
		toolscache.DefaultWatchErrorHandler(ctx, r, err)
		return
	}
	ref := parseDenied(err)
	ref.typeDescription = r.TypeDescription()
	key := ref.String()
	p.mu.Lock()
	_, known := p.refused[key]
	ref.last = time.Now()
	p.refused[key] = ref
	p.mu.Unlock()
	if known {
		return
	}
	p.log.Error(err, "the API server refuses a permission the manager needs; it cannot act until it is granted (see the chart's rbac-manager.yaml)",
		"verb", ref.Verb, "resource", ref.Resource, "group", ref.Group, "namespace", ref.Namespace, "type", r.TypeDescription())
	p.recorder.Eventf(p.lease, corev1.EventTypeWarning, "PermissionDenied",
		"the manager cannot %s: grant it (the chart's rbac-manager.yaml); until then it waits for its cache and places nothing: %s", ref, bounded(ref.Message))
}

// check is the /readyz check: it fails while a refusal was seen recently and the informer it kept from
// syncing has still not synced, naming each. synced reports whether the informer of a type (as the
// reflector describes it, "*v1.Lease") has synced.
func (p *permissions) check(synced func(typeDescription string) bool) error {
	p.mu.Lock()
	refused := maps.Clone(p.refused)
	p.mu.Unlock()
	for key, r := range refused {
		if synced(r.typeDescription) {
			p.mu.Lock()
			delete(p.refused, key)
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var missing []string
	for key, r := range p.refused {
		if time.Since(r.last) > deniedMemory {
			delete(p.refused, key)
			continue
		}
		missing = append(missing, r.String())
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return errors.New("missing RBAC permissions: " + strings.Join(missing, "; "))
}

// forbiddenText is the API server's wording of an RBAC refusal (k8s.io/apiserver's authorization
// message): `... cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "x"`.
var forbiddenText = regexp.MustCompile(`cannot (\S+) resource "([^"]*)" in API group "([^"]*)"(?: in the namespace "([^"]*)")?`)

// parseDenied reads verb, resource and namespace from a Forbidden error, falling back on its details.
func parseDenied(err error) deniedPermission {
	ref := deniedPermission{Verb: "list/watch", Message: err.Error()}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil {
			ref.Resource, ref.Group = d.Kind, d.Group
		}
	}
	if m := forbiddenText.FindStringSubmatch(ref.Message); m != nil {
		ref.Verb, ref.Resource, ref.Group, ref.Namespace = m[1], m[2], m[3], m[4]
	}
	return ref
}

// cachedTypes are the objects the manager's cache holds (watch.go, partition.go).
var cachedTypes = []client.Object{&egressgwv1.EgressGateway{}, &egressgwv1.EgressPolicy{}, &corev1.Namespace{}, &corev1.Node{}, &coordinationv1.Lease{}}

// informerSynced reports whether the informer of the type a reflector describes has synced.
func informerSynced(ctx context.Context, c cache.Informers, typeDescription string) bool {
	for _, obj := range cachedTypes {
		if fmt.Sprintf("%T", obj) == typeDescription {
			inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
			return err == nil && inf.HasSynced()
		}
	}
	return false
}
