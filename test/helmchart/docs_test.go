package helmchart

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/egressgw/egressgw/test/envtest"
)

// installDocs are the guides a newcomer follows.
var installDocs = []string{"docs/install-eks.md", "docs/install-gke.md", "docs/install-aks.md", "docs/troubleshooting.md", "docs/upgrade-uninstall.md"}

var (
	setArg     = regexp.MustCompile(`--set(?:-string)?[ =]('[^']*'|"[^"]*"|\S+)`)
	valuesFile = regexp.MustCompile(`(?:-f|--values)[ =](\S+\.yaml)`)
	valueKey   = regexp.MustCompile("`((?:cloud|aws|gcp|azure|identity|image|manager|agent|metrics|uninstallHook|caBundle)(?:\\.[A-Za-z][A-Za-z0-9]*)*)(?:=[^`]*)?`")
	exampleRef = regexp.MustCompile(`(?:\]\(\.\./|\s|^)(examples/[A-Za-z0-9_./-]+\.(?:yaml|json|sh|md))`)
	shellSubst = regexp.MustCompile(`\$\([^)]*\)`)
)

// TestDocsNameRealValuesAndFiles: every value key the guides name (in --set, or as `key` in the text)
// is a key of values.yaml, every example they name exists, and every helm install command in them
// renders with the chart (the schema accepts its values; $(...) stands for a plausible value).
func TestDocsNameRealValuesAndFiles(t *testing.T) {
	root := envtest.RepoRoot()
	defaults := readValuesYAML(t, filepath.Join(Dir(), "values.yaml"))
	for _, doc := range installDocs {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, doc))
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			keys := 0
			for _, m := range setArg.FindAllStringSubmatch(text, -1) {
				key, _, _ := strings.Cut(strings.Trim(m[1], `'"`), "=")
				wantValueKey(t, defaults, key, m[0])
				keys++
			}
			for _, m := range valueKey.FindAllStringSubmatch(text, -1) {
				wantValueKey(t, defaults, m[1], m[0])
				keys++
			}
			for _, m := range append(exampleRef.FindAllStringSubmatch(text, -1), valuesFile.FindAllStringSubmatch(text, -1)...) {
				if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
					t.Errorf("%s names %s, which does not exist", doc, m[1])
				}
			}
			for _, cmd := range helmInstalls(text) {
				renderDocCommand(t, root, cmd)
			}
			t.Logf("%d value keys checked", keys)
		})
	}
}

// TestExampleValuesRender: each examples/*/values-*.yaml renders with the chart.
func TestExampleValuesRender(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(envtest.RepoRoot(), "examples", "*", "values-*.yaml"))
	if len(files) < 3 {
		t.Fatalf("want a values file per cloud, found %v", files)
	}
	for _, f := range files {
		vals, err := ValuesFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Render(vals, Options{}); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

func readValuesYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// wantValueKey checks that a dotted key exists in values.yaml; below a map that is empty there (free
// keys such as aws.egressSubnets.<zone>) any key is fine.
func wantValueKey(t *testing.T, values map[string]any, key, where string) {
	t.Helper()
	cur := values
	parts := strings.Split(key, ".")
	for i, p := range parts {
		v, ok := cur[p]
		if !ok {
			t.Errorf("%s: values.yaml has no %s", where, strings.Join(parts[:i+1], "."))
			return
		}
		m, isMap := v.(map[string]any)
		if !isMap || (len(m) == 0 && i < len(parts)-1) {
			if i < len(parts)-1 && !isMap {
				t.Errorf("%s: %s is not a map in values.yaml", where, strings.Join(parts[:i+1], "."))
			}
			return
		}
		cur = m
	}
}

// shellWords splits a command line as sh would for these documents: quotes removed, a $(...)
// substitution replaced by a well-formed ID (it stands for one the reader's cloud prints).
func shellWords(cmd string) []string {
	cmd = shellSubst.ReplaceAllString(cmd, "00000000-0000-4000-8000-000000000001")
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range cmd {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// helmInstalls are the `helm install` commands of the document's shell blocks, continuation lines joined.
func helmInstalls(text string) []string {
	var out []string
	joined := strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "helm install ") {
			out = append(out, l)
		}
	}
	return out
}

func renderDocCommand(t *testing.T, root, cmd string) {
	t.Helper()
	var sets []string
	words := shellWords(cmd)
	for i, w := range words {
		if (w == "--set" || w == "--set-string") && i+1 < len(words) {
			sets = append(sets, words[i+1])
		}
	}
	vals, err := ParseSet(sets...)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if m := valuesFile.FindStringSubmatch(cmd); m != nil {
		if vals, err = ValuesFile(filepath.Join(root, m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Render(vals, Options{}); err != nil {
		t.Errorf("the documented command does not render:\n%s\n%v", cmd, err)
	}
}
