// Package helmchart renders charts/egressgw through helm's own Go packages, as `helm template` does
// (values merged over values.yaml, values.schema.json enforced), and returns the rendered objects. The
// chart tests and the lab use it, so that what they run is what a user installs.
package helmchart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// DefaultKubeVersion is the Kubernetes version rendered for when Options do not name one (helm's own
// default capabilities are older than the chart's kubeVersion).
const DefaultKubeVersion = "v1.37.0"

// Options name the release as `helm template NAME --namespace NS` would.
type Options struct {
	ReleaseName string // default "egressgw"
	Namespace   string // default "egressgw-system"
	KubeVersion string // default "v1.37.0"
	// ChartDir defaults to the repository's charts/egressgw.
	ChartDir string
}

// Rendered is the outcome of one render.
type Rendered struct {
	// Objects are the release's objects in the order helm installs them (hooks and CRDs excluded).
	Objects []*unstructured.Unstructured
	// Hooks are the hook objects, each with its helm.sh/hook annotation.
	Hooks []*unstructured.Unstructured
	// CRDs are the chart's crds/ files.
	CRDs  []*unstructured.Unstructured
	Notes string
}

// Dir is the chart's directory in this repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "egressgw")
}

// Load reads the chart from dir (Dir() when empty).
func Load(dir string) (*chart.Chart, error) {
	if dir == "" {
		dir = Dir()
	}
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return c, nil
}

// ParseSet turns `--set` arguments (a=b,c.d=e) into values as helm's --set does.
func ParseSet(sets ...string) (map[string]any, error) {
	vals := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	return vals, nil
}

func (o Options) withDefaults() Options {
	if o.ReleaseName == "" {
		o.ReleaseName = "egressgw"
	}
	if o.Namespace == "" {
		o.Namespace = "egressgw-system"
	}
	if o.ChartDir == "" {
		o.ChartDir = Dir()
	}
	if o.KubeVersion == "" {
		o.KubeVersion = DefaultKubeVersion
	}
	return o
}

// Render renders the chart with vals over its values.yaml. Schema violations and template errors come
// back as helm reports them.
func Render(vals map[string]any, o Options) (*Rendered, error) {
	o = o.withDefaults()
	c, err := Load(o.ChartDir)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = o.ReleaseName, o.Namespace
	kv, err := chartutil.ParseKubeVersion(o.KubeVersion)
	if err != nil {
		return nil, err
	}
	install.KubeVersion = kv
	rel, err := install.Run(c, vals)
	if err != nil {
		return nil, err
	}
	return fromRelease(rel, c)
}

// fromRelease is what a release (rendered or installed) is made of: its manifest, hooks and the chart's CRDs.
func fromRelease(rel *release.Release, c *chart.Chart) (*Rendered, error) {
	r := &Rendered{Notes: rel.Info.Notes}
	var err error
	if r.Objects, err = decode(rel.Manifest); err != nil {
		return nil, err
	}
	for _, h := range rel.Hooks {
		objs, err := decode(h.Manifest)
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		r.Hooks = append(r.Hooks, objs...)
	}
	for _, f := range c.CRDObjects() {
		objs, err := decode(string(f.File.Data))
		if err != nil {
			return nil, fmt.Errorf("crd %s: %w", f.Filename, err)
		}
		r.CRDs = append(r.CRDs, objs...)
	}
	return r, nil
}

// decode splits a multi-document manifest into objects, skipping empty documents.
func decode(manifest string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var obj map[string]any
		err := d.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode rendered manifest: %w", err)
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
}

// All is every object: CRDs, then the release's objects, then hooks.
func (r *Rendered) All() []*unstructured.Unstructured {
	return append(append(append([]*unstructured.Unstructured{}, r.CRDs...), r.Objects...), r.Hooks...)
}

// Find returns the object (release object or hook) of that kind and name, or nil.
func (r *Rendered) Find(kind, name string) *unstructured.Unstructured {
	for _, o := range append(append([]*unstructured.Unstructured{}, r.Objects...), r.Hooks...) {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// OfKind returns the release's objects and hooks of one kind, sorted by name.
func (r *Rendered) OfKind(gk schema.GroupKind) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range append(append([]*unstructured.Unstructured{}, r.Objects...), r.Hooks...) {
		if o.GroupVersionKind().GroupKind() == gk {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// Lint runs helm lint on the chart with vals and returns every message of severity warning or worse.
func Lint(vals map[string]any, o Options) []string {
	o = o.withDefaults()
	l := action.NewLint()
	l.Strict, l.Namespace = true, o.Namespace
	if kv, err := chartutil.ParseKubeVersion(o.KubeVersion); err == nil {
		l.KubeVersion = kv
	}
	res := l.Run([]string{o.ChartDir}, vals)
	var msgs []string
	for _, err := range res.Errors {
		msgs = append(msgs, err.Error())
	}
	return msgs
}

// ValuesFile reads a values file (YAML) as helm's -f does.
func ValuesFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := chartutil.ReadValues(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("values %s: %w", path, err)
	}
	return v.AsMap(), nil
}
