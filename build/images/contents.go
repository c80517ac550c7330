package main

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed iptables-wrapper.sh
var wrapperFS embed.FS

// agentPackages are the Debian packages of the agent's userland: the datapath runs ip, iptables(-save,
// -restore), ipset, nft and conntrack (it writes sysctls through files), the uninstall hook a shell,
// pgrep and sleep; sysctl stays for whoever debugs a node from the agent's container.
var agentPackages = []string{"iptables", "ipset", "nftables", "conntrack", "iproute2", "procps", "dash", "coreutils", "grep"}

// binaries are the Go commands of the images, by the name they have there.
var binaries = map[string]string{
	"egressgw-manager": "./cmd/manager", "egressgw-agent": "./cmd/agent",
	"egressgw-cni": "./cmd/cni", "egressgw-uninstall-wait": "./cmd/uninstall-wait",
}

// buildBinaries cross-compiles the Go commands for arch (CGO off: static, no libc of the image needed).
func buildBinaries(ctx context.Context, o *options, arch string) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "egressgw-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := map[string][]byte{}
	for name, pkg := range binaries {
		file := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+o.version, "-o", file, pkg)
		cmd.Dir = o.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
		}
		if out[name], err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// accounts gives the images a root and a nonroot (65532) user, for the manager's runAsUser.
func accounts(r *rootfs) {
	r.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
	r.file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n"))
	r.dir("root", 0o700)
}

func managerImage(ctx context.Context, o *options, pb platformBuild) (imageSpec, error) {
	r := newRootfs()
	accounts(r)
	bundle, err := caBundle(ctx, o, pb.apt)
	if err != nil {
		return imageSpec{}, err
	}
	r.dir("etc/ssl", 0o755)
	r.dir("etc/ssl/certs", 0o755)
	r.file("etc/ssl/certs/ca-certificates.crt", 0o644, bundle)
	r.file("usr/local/bin/egressgw-manager", 0o755, pb.bins["egressgw-manager"])
	layer, err := r.tar()
	if err != nil {
		return imageSpec{}, err
	}
	return imageSpec{name: "egressgw-manager", arch: pb.platform.Architecture, version: o.version, layers: [][]byte{layer},
		entrypoint: []string{"/usr/local/bin/egressgw-manager"}, user: "65532:65532"}, nil
}

// caBundle is the Mozilla CA set of Debian's ca-certificates package in one PEM file, as its
// update-ca-certificates would write it (the image runs no maintainer script).
func caBundle(ctx context.Context, o *options, a apt) ([]byte, error) {
	debs, err := download(ctx, a, o.debCache, []string{"ca-certificates"})
	if err != nil {
		return nil, err
	}
	tmp := newRootfs()
	if err := tmp.addDeb(ctx, debs[0]); err != nil {
		return nil, err
	}
	var names []string
	for p, e := range tmp.entries {
		if strings.HasPrefix(p, "usr/share/ca-certificates/") && strings.HasSuffix(p, ".crt") && e.data != nil {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, n := range names {
		buf.Write(bytes.TrimSpace(tmp.entries[n].data))
		buf.WriteByte('\n')
	}
	if len(names) < 50 {
		return nil, fmt.Errorf("ca-certificates holds only %d certificates", len(names))
	}
	return buf.Bytes(), nil
}

func agentImage(ctx context.Context, o *options, pb platformBuild) (imageSpec, error) {
	pkgs, err := dependencyClosure(ctx, pb.apt, agentPackages)
	if err != nil {
		return imageSpec{}, err
	}
	debs, err := download(ctx, pb.apt, o.debCache, pkgs)
	if err != nil {
		return imageSpec{}, err
	}
	base := newRootfs()
	accounts(base)
	for _, d := range debs {
		if err := base.addDeb(ctx, d); err != nil {
			return imageSpec{}, err
		}
	}
	base.symlink("usr/bin/sh", "dash")
	base.file("etc/egressgw-packages", 0o644, []byte(strings.Join(debNames(debs), "\n")+"\n"))
	userland, err := base.tar()
	if err != nil {
		return imageSpec{}, err
	}
	own := &rootfs{entries: map[string]*entry{}}
	if err := agentOwnFiles(own, pb.bins); err != nil {
		return imageSpec{}, err
	}
	top, err := own.tar()
	if err != nil {
		return imageSpec{}, err
	}
	return imageSpec{name: "egressgw-agent", arch: pb.platform.Architecture, version: o.version, layers: [][]byte{userland, top},
		entrypoint: []string{"/usr/local/bin/egressgw-agent"}, user: "0:0"}, nil
}

// agentOwnFiles is the agent image's top layer: egressgw's binaries and the iptables wrapper in place
// of the alternatives links that Debian's maintainer scripts would have made.
func agentOwnFiles(r *rootfs, bins map[string][]byte) error {
	for _, d := range []string{"usr", "usr/local", "usr/local/bin", "usr/sbin", "opt", "opt/egressgw", "opt/egressgw/bin"} {
		r.dir(d, 0o755)
	}
	r.file("usr/local/bin/egressgw-agent", 0o755, bins["egressgw-agent"])
	r.file("usr/local/bin/egressgw-uninstall-wait", 0o755, bins["egressgw-uninstall-wait"])
	r.file("opt/egressgw/bin/egressgw-cni", 0o755, bins["egressgw-cni"])
	wrapper, err := wrapperFS.ReadFile("iptables-wrapper.sh")
	if err != nil {
		return err
	}
	r.file("usr/sbin/iptables-wrapper", 0o755, wrapper)
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore"} {
			r.symlink("usr/sbin/"+fam+suffix, "iptables-wrapper")
		}
	}
	return nil
}

func debNames(debs []string) []string {
	var out []string
	for _, d := range debs {
		out = append(out, strings.TrimSuffix(filepath.Base(d), ".deb"))
	}
	return out
}
