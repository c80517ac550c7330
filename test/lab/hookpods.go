package lab

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/egressgw/egressgw/test/netlab"
)

// The DaemonSet and Job controllers' and the kubelets' part for the hooks' DaemonSets and Jobs (see
// controllers.go).

// kubeletBackoff is the kubelet's first restart back-off of a failed container; it doubles up to 5 min.
const kubeletBackoff = 10 * time.Second

// jobPodFailureBackoff is the Job controller's first delay before it replaces a failed pod.
const jobPodFailureBackoff = 10 * time.Second

// syncDaemonSets starts the pods of a DaemonSet that appeared (other than the agent's, which the lab
// runs since Up) and stops those of one that was deleted.
func (c *controllers) syncDaemonSets(ctx context.Context) error {
	var list appsv1.DaemonSetList
	if err := c.lab.Client.List(ctx, &list, client.InNamespace(SystemNamespace)); err != nil {
		return fmt.Errorf("list DaemonSets: %w", err)
	}
	return syncOwners(c, "DaemonSet", pointers(list.Items), func(ds *appsv1.DaemonSet) bool { return ds.Name == agentWorkload },
		func(ds *appsv1.DaemonSet) error { return c.startDaemonSet(ctx, ds) })
}

// syncOwners starts the pods of each owner not seen before (unless skip says the controllers leave it
// alone) and stops those of each one deleted since.
func syncOwners[T client.Object](c *controllers, kind string, owners []T, skip func(T) bool, start func(T) error) error {
	live := map[types.UID]bool{}
	for _, o := range owners {
		if o.GetDeletionTimestamp() != nil {
			continue
		}
		live[o.GetUID()] = true
		if c.known(o.GetUID()) || skip(o) {
			continue
		}
		if err := start(o); err != nil {
			return fmt.Errorf("%s %s: %w", kind, o.GetName(), err)
		}
	}
	c.reap(kind, live)
	return nil
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

func (c *controllers) known(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hooks[uid] != nil
}

// reap stops the runs of kind whose object is no longer live (the garbage collector deletes the pods
// of a deleted owner, the kubelet stops them within their grace period).
func (c *controllers) reap(kind string, live map[types.UID]bool) {
	c.mu.Lock()
	var gone []*hookRun
	for uid, r := range c.hooks {
		if r.kind == kind && !live[uid] {
			gone = append(gone, r)
			delete(c.hooks, uid)
		}
	}
	c.mu.Unlock()
	for _, r := range gone {
		c.log.Info("deleted: stopping its pods", "kind", kind, "name", r.name)
		go r.delete(r.grace)
	}
}

func (c *controllers) startDaemonSet(ctx context.Context, ds *appsv1.DaemonSet) error {
	nodes, err := c.schedule(&ds.Spec.Template.Spec)
	if err != nil {
		return err
	}
	r := c.newRun("DaemonSet", ds.Name, ds.UID, &ds.Spec.Template.Spec)
	c.log.Info("DaemonSet scheduled", "name", ds.Name, "nodes", len(nodes))
	if err := c.writeDaemonSetStatus(ctx, ds, len(nodes), r); err != nil {
		return err
	}
	for _, n := range nodes {
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			// The pod lives on after this sync: not the sync's context.
			if err := c.runDaemonPod(context.Background(), r, ds, n); err != nil && err != errGone {
				c.fail(fmt.Errorf("DaemonSet %s on %s: %w", ds.Name, n.Name, err))
				return
			}
			if err := c.writeDaemonSetStatus(context.Background(), ds, len(nodes), r); err != nil && !apierrors.IsNotFound(err) {
				c.fail(err)
			}
		}()
	}
	return nil
}

func (c *controllers) newRun(kind, name string, uid types.UID, spec *corev1.PodSpec) *hookRun {
	r := &hookRun{kind: kind, name: name, gone: make(chan struct{}), ready: map[string]bool{},
		grace: time.Duration(ptr.Deref(spec.TerminationGracePeriodSeconds, 30)) * time.Second}
	c.mu.Lock()
	c.hooks[uid] = r
	c.mu.Unlock()
	return r
}

// runDaemonPod is the kubelet running a DaemonSet's pod on n: init containers to completion in order
// (a failed one again after the back-off, restartPolicy Always), then the containers; ready then.
func (c *controllers) runDaemonPod(ctx context.Context, r *hookRun, ds *appsv1.DaemonSet, n *netlab.Node) error {
	spec := &ds.Spec.Template.Spec
	pod := ds.Name + "-" + n.Name
	for i := range spec.InitContainers {
		for backoff := kubeletBackoff; ; backoff = min(2*backoff, 5*time.Minute) {
			p, err := c.startContainer(ctx, r, spec, &spec.InitContainers[i], n, pod)
			if err != nil {
				return err
			}
			err = r.wait(p)
			if err == nil || err == errGone {
				if err != nil {
					return err
				}
				break
			}
			c.log.Warn("init container failed; restarting after the back-off", "pod", pod, "container", spec.InitContainers[i].Name, "err", err, "backoff", backoff)
			if r.sleepOrGone(backoff) {
				return errGone
			}
		}
	}
	for i := range spec.Containers {
		if _, err := c.startContainer(ctx, r, spec, &spec.Containers[i], n, pod); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.ready[n.Name] = true
	r.mu.Unlock()
	c.log.Info("pod ready", "pod", pod)
	return nil
}

func (r *hookRun) readyCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ready)
}

// writeDaemonSetStatus writes the status the DaemonSet controller computes (daemon_controller.go,
// storeDaemonSetStatus): every scheduled node runs a pod of the current template, ready of them ready
// and available (minReadySeconds 0). The count of ready pods is read at each write, so that two writes
// racing never set it back.
func (c *controllers) writeDaemonSetStatus(ctx context.Context, ds *appsv1.DaemonSet, desired int, r *hookRun) error {
	var cur appsv1.DaemonSet
	return c.updateStatus(ctx, ds, &cur, func() {
		d, rd := int32(desired), int32(r.readyCount())
		cur.Status = appsv1.DaemonSetStatus{ObservedGeneration: cur.Generation, DesiredNumberScheduled: d, CurrentNumberScheduled: d,
			UpdatedNumberScheduled: d, NumberReady: rd, NumberAvailable: rd, NumberUnavailable: d - rd}
	})
}

// updateStatus reads obj's current version into cur (NotFound when its name now holds another object),
// lets change edit cur's status and writes it through the status subresource, again on a conflict.
func (c *controllers) updateStatus(ctx context.Context, obj, cur client.Object, change func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.lab.Client.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
			return err
		}
		if cur.GetUID() != obj.GetUID() {
			return apierrors.NewNotFound(schema.GroupResource{Resource: fmt.Sprintf("%T", obj)}, obj.GetName())
		}
		change()
		if err := c.lab.Client.Status().Update(ctx, cur); err != nil {
			return fmt.Errorf("the API server refused the status of %s: %w", obj.GetName(), err)
		}
		return nil
	})
}

// syncJobs starts the pod of a Job that appeared and stops that of one that was deleted.
func (c *controllers) syncJobs(ctx context.Context) error {
	var list batchv1.JobList
	if err := c.lab.Client.List(ctx, &list, client.InNamespace(SystemNamespace)); err != nil {
		return fmt.Errorf("list Jobs: %w", err)
	}
	return syncOwners(c, "Job", pointers(list.Items), isFinished, c.startJob)
}

func isFinished(job *batchv1.Job) bool {
	for _, cond := range job.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *controllers) startJob(job *batchv1.Job) error {
	nodes, err := c.schedule(&job.Spec.Template.Spec)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return fmt.Errorf("no node matches its nodeSelector %v", job.Spec.Template.Spec.NodeSelector)
	}
	r := c.newRun("Job", job.Name, job.UID, &job.Spec.Template.Spec)
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		if err := c.runJob(r, job, nodes[0]); err != nil && err != errGone && !apierrors.IsNotFound(err) {
			c.fail(fmt.Errorf("Job %s: %w", job.Name, err))
		}
	}()
	return nil
}

// runJob runs the Job's pods (one at a time: parallelism and completions 1, the chart's) until one
// succeeds or backoffLimit pods failed, writing the status the Job controller would after each step.
func (c *controllers) runJob(r *hookRun, job *batchv1.Job, n *netlab.Node) error {
	ctx := context.Background()
	spec := &job.Spec.Template.Spec
	limit := ptr.Deref(job.Spec.BackoffLimit, 6)
	var failed int32
	for attempt := 0; ; attempt++ {
		pod := fmt.Sprintf("%s-%d", job.Name, attempt)
		// The Job controller sets startTime when it first syncs the Job, and counts the new pod active.
		if err := c.jobStatus(ctx, job, func(st *batchv1.JobStatus) {
			if st.StartTime == nil {
				st.StartTime = ptr.To(metav1.Now())
			}
			st.Active, st.Ready, st.Terminating = 1, ptr.To[int32](0), ptr.To[int32](0)
			st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
		}); err != nil {
			return err
		}
		var ps []*proc
		for i := range spec.Containers {
			p, err := c.startContainer(ctx, r, spec, &spec.Containers[i], n, pod)
			if err != nil {
				return err
			}
			ps = append(ps, p)
		}
		if err := c.jobStatus(ctx, job, func(st *batchv1.JobStatus) { st.Ready = ptr.To[int32](1) }); err != nil {
			return err
		}
		var exit error
		for _, p := range ps {
			if err := r.wait(p); err == errGone {
				return err
			} else if err != nil {
				exit = err
			}
		}
		if exit == nil {
			c.log.Info("Job pod succeeded", "job", job.Name, "pod", pod)
			return c.finishJob(ctx, job, true)
		}
		failed++
		c.log.Warn("Job pod failed", "job", job.Name, "pod", pod, "err", exit, "failed", failed, "backoffLimit", limit)
		if failed > limit {
			return c.finishJob(ctx, job, false)
		}
		if err := c.jobStatus(ctx, job, func(st *batchv1.JobStatus) { st.Active, st.Ready, st.Failed = 0, ptr.To[int32](0), failed }); err != nil {
			return err
		}
		// The Job controller creates the next pod after its failure back-off: 10 s, doubling, at most 10 min.
		if r.sleepOrGone(min(jobPodFailureBackoff<<(failed-1), 10*time.Minute)) {
			return errGone
		}
	}
}

// finishJob writes the Job's end as the Job controller does since the success and failure policies:
// first the counted pod and the interim condition (SuccessCriteriaMet, or FailureTarget), then, no pod
// being left to terminate, the terminal one (Complete with completionTime, or Failed) with the same
// reason. The API server refuses a Complete without SuccessCriteriaMet and a Failed without
// FailureTarget.
func (c *controllers) finishJob(ctx context.Context, job *batchv1.Job, succeeded bool) error {
	now := metav1.Now()
	interim, final, reason, message := batchv1.JobFailureTarget, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	if succeeded {
		interim, final, reason, message = batchv1.JobSuccessCriteriaMet, batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"
	}
	cond := func(t batchv1.JobConditionType) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastProbeTime: now, LastTransitionTime: now}
	}
	if err := c.jobStatus(ctx, job, func(st *batchv1.JobStatus) {
		st.Active, st.Ready = 0, ptr.To[int32](0)
		if succeeded {
			st.Succeeded++
		} else {
			st.Failed++
		}
		st.Conditions = append(st.Conditions, cond(interim))
	}); err != nil {
		return err
	}
	return c.jobStatus(ctx, job, func(st *batchv1.JobStatus) {
		st.Conditions = append(st.Conditions, cond(final))
		if succeeded {
			st.CompletionTime = &now
		}
	})
}

// jobStatus applies change to the Job's current status and writes it.
func (c *controllers) jobStatus(ctx context.Context, job *batchv1.Job, change func(*batchv1.JobStatus)) error {
	var cur batchv1.Job
	return c.updateStatus(ctx, job, &cur, func() { change(&cur.Status) })
}
