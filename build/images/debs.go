package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maintainerOnly are dependencies that only packages' maintainer scripts use; an image runs no
// maintainer script, so they and what they pull in (perl, debconf) stay out.
var maintainerOnly = map[string]bool{
	"debconf": true, "debconf-2.0": true, "cdebconf": true, "perl-base": true, "perl": true, "perl:any": true,
	"dpkg": true, "init-system-helpers": true, "install-info": true, "usrmerge": true, "usr-is-merged": true,
	"tar": true, "debianutils": true, "sensible-utils": true, "lsb-base": true, "sysvinit-utils": true,
	"libpam-runtime": true, "adduser": true, "passwd": true, "openssl": true,
}

// dependencyClosure is roots plus everything they depend on at run time (Depends and Pre-Depends, the
// first of each alternative), as apt sees it for the architecture, sorted.
func dependencyClosure(ctx context.Context, a apt, roots []string) ([]string, error) {
	seen := map[string]bool{}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if seen[pkg] || maintainerOnly[pkg] {
			continue
		}
		seen[pkg] = true
		out, err := a.command(ctx, "apt-cache", "depends", "--no-recommends", "--no-suggests",
			"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("apt-cache depends %s (run apt-get update first?): %w", pkg, err)
		}
		queue = append(queue, firstAlternatives(out)...)
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// firstAlternatives reads `apt-cache depends` output: "  Depends: X" lines, " |Depends: X" for an
// alternative that the next line continues, "<virtual>" names followed by indented providers.
func firstAlternatives(out []byte) []string {
	var deps []string
	inGroup, wantProvider := false, false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "    ") { // a provider of the virtual package above
			if wantProvider {
				deps = append(deps, strings.TrimSpace(line))
				wantProvider = false
			}
			continue
		}
		kind, name, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok || (kind != "Depends" && kind != "|Depends" && kind != "PreDepends" && kind != "|PreDepends") {
			continue
		}
		first := !inGroup
		inGroup = strings.HasPrefix(kind, "|")
		if !first {
			continue
		}
		if strings.HasPrefix(name, "<") {
			wantProvider = !maintainerOnly[strings.Trim(name, "<>")]
			continue
		}
		deps = append(deps, name)
	}
	return deps
}

// download fetches the packages' .deb files of the architecture into dir (kept between builds) and
// returns their paths.
func download(ctx context.Context, a apt, dir string, pkgs []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var missing []string
	paths := map[string]string{}
	for _, p := range pkgs {
		if m := debFiles(dir, p, a.arch); len(m) > 0 {
			paths[p] = m[len(m)-1]
		} else {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		cmd := a.command(ctx, "apt-get", append([]string{"download", "-q"}, missing...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apt-get download %s: %w\n%s", strings.Join(missing, " "), err, out)
		}
	}
	var out []string
	for _, p := range pkgs {
		if paths[p] == "" {
			m := debFiles(dir, p, a.arch)
			if len(m) == 0 {
				return nil, fmt.Errorf("apt-get download left no .deb for %s in %s", p, dir)
			}
			paths[p] = m[len(m)-1]
		}
		out = append(out, paths[p])
	}
	return out, nil
}

// debFiles are a package's downloaded files of the architecture (or of all architectures), named
// NAME_VERSION_ARCH.deb (an arch qualifier such as :amd64 is not part of the file name), sorted.
func debFiles(dir, pkg, arch string) []string {
	name, _, _ := strings.Cut(pkg, ":")
	var out []string
	for _, a := range []string{arch, "all"} {
		m, _ := filepath.Glob(filepath.Join(dir, name+"_*_"+a+".deb"))
		out = append(out, m...)
	}
	slices.Sort(out)
	return out
}
