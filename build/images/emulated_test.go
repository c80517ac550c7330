package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// emulator runs the other architecture's binaries: qemu's user-mode emulator, statically linked so that
// it runs inside the image's root filesystem, where no library of the host is.
const emulator = "qemu-aarch64-static"

// TestArm64ImagesRunUnderEmulation: the arm64 images' binaries do what the amd64 ones do, run through
// qemu's user-mode emulator chrooted into the arm64 image's own filesystem: egressgw's binaries print
// their version, legacy iptables and the shell run, and every library of the nf_tables and ipset tools
// resolves with the image's own aarch64 loader. Reading the ELF headers (TestImagesAreMultiArch)
// cannot tell a missing library or a wrong loader path; running them can.
func TestArm64ImagesRunUnderEmulation(t *testing.T) {
	dir := imagesDir(t, "chroot")
	want := builtPlatforms(t)
	if runtime.GOARCH == "arm64" || !slices.ContainsFunc(want, func(p v1.Platform) bool { return p.Architecture == "arm64" }) {
		t.Skipf("nothing to emulate: the build's platforms are %v on %s", want, runtime.GOARCH)
	}
	qemu, err := exec.LookPath(emulator)
	if err != nil {
		t.Fatalf("%s not found (`make images-test` installs Debian's qemu-user-static): %v", emulator, err)
	}
	manager := unpackArch(t, archive(t, dir, "egressgw-manager"), "arm64")
	agent := unpackArch(t, archive(t, dir, "egressgw-agent"), "arm64")
	for _, root := range []string{manager, agent} {
		copyExecutable(t, qemu, filepath.Join(root, emulator))
	}
	for _, c := range append(egressgwVersions(manager, agent), []run{
		{agent, []string{"/usr/sbin/xtables-legacy-multi", "iptables", "--version"}, regexp.MustCompile(`^iptables v1\.8\.\d+ \(legacy\)`)},
		{agent, []string{"/bin/sh", "-c", "echo shell-ok"}, regexp.MustCompile(`^shell-ok\n$`)},
	}...) {
		out := chrootRun(t, c.root, nil, append([]string{"/" + emulator}, c.argv...)...)
		if !c.want.MatchString(out) {
			t.Errorf("arm64 %v printed %q; want %s", c.argv, out, c.want)
		}
	}
	// qemu's user mode translates only a few netlink families (route, uevent, audit): the nf_tables and
	// ipset tools stop at their first netfilter socket ("Protocol not supported"). What can go wrong in
	// the image, a library or the loader missing, shows in the loader's own list of what it resolves.
	for _, bin := range []string{"/usr/sbin/xtables-nft-multi", "/usr/sbin/nft", "/usr/sbin/ipset", "/usr/sbin/conntrack", "/usr/bin/ip"} {
		out := chrootRun(t, agent, nil, "/"+emulator, arm64Loader, "--list", bin)
		if !strings.Contains(out, "libc.so.6") || strings.Contains(out, "not found") {
			t.Errorf("arm64 %s: the loader resolves\n%s\nwant every library found, libc among them", bin, out)
		}
	}
}

// arm64Loader is the ELF interpreter Debian's arm64 binaries name.
const arm64Loader = "/lib/ld-linux-aarch64.so.1"

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
