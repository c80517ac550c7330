// Command testreport reads `go test -json` on stdin and prints a short report: one line per package,
// the full output of every failed test, and one line per skipped test with the reason it gave. It exits
// non-zero when any test or build failed, so `make test` fails too.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string
	FailedBuild string
}

type key struct{ pkg, test string }

type report struct {
	out      io.Writer
	output   map[key][]string
	skipped  []string
	failed   int
	packages int
}

func main() {
	r := &report{out: os.Stdout, output: map[key][]string{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r.summary()
	if r.failed > 0 {
		os.Exit(1)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Not JSON: the go command's own messages (for example a package that does not compile).
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.out, e.Output)
	case "build-fail":
		r.failed++
	case "output":
		r.output[k] = append(r.output[k], e.Output)
	case "skip":
		if e.Test != "" {
			r.skipped = append(r.skipped, fmt.Sprintf("SKIP %s %s: %s", e.Package, e.Test, skipReason(r.output[k])))
		}
		delete(r.output, k)
	case "fail":
		r.failed++
		if e.Test != "" {
			fmt.Fprintf(r.out, "--- FAIL %s %s (%.2fs)\n%s", e.Package, e.Test, e.Elapsed, strings.Join(r.output[k], ""))
		} else {
			r.packages++
			fmt.Fprintf(r.out, "FAIL %s (%.2fs)\n%s", e.Package, e.Elapsed, strings.Join(r.output[k], ""))
		}
		delete(r.output, k)
	case "pass":
		if e.Test == "" {
			r.packages++
			fmt.Fprintf(r.out, "ok   %s (%.2fs)\n", e.Package, e.Elapsed)
		}
		delete(r.output, k)
	}
}

// skipReason picks the message a test gave to t.Skip: the last output line that is not the
// "--- SKIP" header or a "=== " marker.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return l
	}
	return "(no reason given)"
}

func (r *report) summary() {
	sort.Strings(r.skipped)
	for _, s := range r.skipped {
		fmt.Fprintln(r.out, s)
	}
	status := "PASS"
	if r.failed > 0 {
		status = "FAIL"
	}
	fmt.Fprintf(r.out, "%s: %d packages, %d failures, %d skipped tests\n", status, r.packages, r.failed, len(r.skipped))
}
