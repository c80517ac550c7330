package helmchart

import (
	"fmt"
	"regexp"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Deployment returns the rendered Deployment of that name as a typed object.
func (r *Rendered) Deployment(name string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	return d, r.typed("Deployment", name, d)
}

// DaemonSet returns the rendered DaemonSet (release object or hook) of that name as a typed object.
func (r *Rendered) DaemonSet(name string) (*appsv1.DaemonSet, error) {
	d := &appsv1.DaemonSet{}
	return d, r.typed("DaemonSet", name, d)
}

func (r *Rendered) typed(kind, name string, into any) error {
	u := r.Find(kind, name)
	if u == nil {
		return fmt.Errorf("the chart rendered no %s %q", kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		return fmt.Errorf("%s %s: %w", kind, name, err)
	}
	return nil
}

// PodContainer returns a container (or init container) of the pod template of a rendered Deployment,
// DaemonSet or Job (release object or hook).
func (r *Rendered) PodContainer(kind, name, container string) (*corev1.Container, error) {
	u := r.Find(kind, name)
	if u == nil {
		return nil, fmt.Errorf("the chart rendered no %s %q", kind, name)
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtimeFromUnstructured(u.Object, []string{"spec", "template"}, &tmpl); err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	return Container(&tmpl.Spec, container)
}

// Container returns the container (or init container) of that name in a pod template.
func Container(spec *corev1.PodSpec, name string) (*corev1.Container, error) {
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no container %q in the pod template", name)
}

// Process is how the kubelet would start a container: its argv (command then args, $(VAR) expanded
// from the container's env) and its environment.
type Process struct {
	Argv []string
	Env  map[string]string
}

// ContainerProcess turns a rendered container into a Process. fieldValues gives the values of the
// downward API fields the env refers to (spec.nodeName, status.hostIP, metadata.namespace, ...); env
// from Secrets or ConfigMaps is left out.
func ContainerProcess(c *corev1.Container, fieldValues map[string]string) Process {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expandEnvRefs(e.Value, env)
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = fieldValues[e.ValueFrom.FieldRef.FieldPath]
		}
	}
	var argv []string
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		argv = append(argv, expandEnvRefs(a, env))
	}
	return Process{Argv: argv, Env: env}
}

// HostPathMounts maps each of the container's mount paths that comes from a hostPath volume to that
// host path (the lab, which runs a node's agent as a process, puts its own directories there).
func HostPathMounts(spec *corev1.PodSpec, c *corev1.Container) map[string]string {
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	out := map[string]string{}
	for _, m := range c.VolumeMounts {
		if p, ok := hostPaths[m.Name]; ok {
			out[m.MountPath] = p
		}
	}
	return out
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandEnvRefs replaces $(VAR) with VAR's value as the kubelet does; an unknown $(VAR) stays as it is.
func expandEnvRefs(s string, env map[string]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[envRef.FindStringSubmatch(m)[1]]; ok {
			return v
		}
		return m
	})
}

// runtimeFromUnstructured converts the object at path inside obj into a typed value.
func runtimeFromUnstructured(obj map[string]any, path []string, into any) error {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return fmt.Errorf("no %v in the object", path)
		}
		cur = m[p]
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return fmt.Errorf("%v is not an object", path)
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m, into, true)
}

// Replace puts obj in place of the release object (or hook) of its kind and name, as the API server
// now holds it (after a helm upgrade); it reports whether there was one.
func (r *Rendered) Replace(obj *unstructured.Unstructured) bool {
	for _, list := range [][]*unstructured.Unstructured{r.Objects, r.Hooks} {
		for i, o := range list {
			if o.GetKind() == obj.GetKind() && o.GetName() == obj.GetName() {
				list[i] = obj
				return true
			}
		}
	}
	return false
}
