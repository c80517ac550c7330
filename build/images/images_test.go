package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/egressgw/egressgw/test/helmchart"
)

// TestImagesRunFromTheirRootfs unpacks each image archive of `make images` into a directory (the
// image's flattened filesystem, as a runtime would lay it out) and runs each binary chrooted into it:
// egressgw's binaries print their version, the CNI plugin answers VERSION, and the agent's userland
// (both iptables backends and the wrapper that chooses one, ipset, nft >= 1.0.6, conntrack, ip, sysctl,
// pgrep, sh) runs with only the image's own libraries.
func TestImagesRunFromTheirRootfs(t *testing.T) {
	dir := imagesDir(t, "chroot")
	manager := unpack(t, archive(t, dir, "egressgw-manager"))
	agent := unpack(t, archive(t, dir, "egressgw-agent"))
	for _, c := range append(egressgwVersions(manager, agent), []run{
		{agent, []string{"/usr/sbin/iptables-nft", "--version"}, regexp.MustCompile(`^iptables v1\.8\.\d+ \(nf_tables\)`)},
		{agent, []string{"/usr/sbin/iptables-legacy", "--version"}, regexp.MustCompile(`^iptables v1\.8\.\d+ \(legacy\)`)},
		{agent, []string{"/usr/sbin/iptables", "--version"}, regexp.MustCompile(`^iptables v1\.8\.\d+ \((nf_tables|legacy)\)`)},
		{agent, []string{"/usr/sbin/iptables-save", "--version"}, regexp.MustCompile(`^iptables-(nft|legacy)-save v1\.8\.\d+ \((nf_tables|legacy)\)`)},
		{agent, []string{"/usr/sbin/ip6tables-restore", "--version"}, regexp.MustCompile(`^ip6tables-(nft|legacy)-restore v1\.8\.\d+ \((nf_tables|legacy)\)`)},
		{agent, []string{"/usr/sbin/ipset", "--version"}, regexp.MustCompile(`^ipset v\d+\.\d+`)},
		{agent, []string{"/usr/sbin/conntrack", "--version"}, regexp.MustCompile(`^conntrack v\d+\.\d+`)},
		{agent, []string{"/usr/bin/ip", "-V"}, regexp.MustCompile(`^ip utility, iproute2-`)},
		{agent, []string{"/usr/sbin/sysctl", "--version"}, regexp.MustCompile(`procps-ng`)},
		{agent, []string{"/usr/bin/pgrep", "--version"}, regexp.MustCompile(`procps-ng`)},
		{agent, []string{"/bin/sh", "-c", "sleep 0 && echo shell-ok"}, regexp.MustCompile(`^shell-ok\n$`)},
	}...) {
		out := chrootRun(t, c.root, nil, c.argv...)
		if !c.want.MatchString(out) {
			t.Errorf("%v printed %q; want %s", c.argv, out, c.want)
		}
	}
	wantNftAtLeast(t, chrootRun(t, agent, nil, "/usr/sbin/nft", "--version"), 1, 0, 6)
	cni := chrootRun(t, agent, []string{"CNI_COMMAND=VERSION"}, "/opt/egressgw/bin/egressgw-cni")
	if !strings.Contains(cni, `"supportedVersions"`) {
		t.Errorf("egressgw-cni VERSION printed %q; want the CNI version JSON", cni)
	}
	mode, err := os.ReadFile(filepath.Join(agent, "run", "egressgw-iptables-mode"))
	if err != nil || (string(mode) != "nft\n" && string(mode) != "legacy\n") {
		t.Errorf("the iptables wrapper recorded mode %q (%v); want nft or legacy", mode, err)
	}
	wantChartCommandsInImages(t, manager, agent)
	if _, err := os.Stat(filepath.Join(manager, "etc", "ssl", "certs", "ca-certificates.crt")); err != nil {
		t.Errorf("the manager image has no CA bundle for the cloud APIs: %v", err)
	}
}

// run is a command to run in an image's filesystem and what it must print.
type run struct {
	root string
	argv []string
	want *regexp.Regexp
}

// egressgwVersions: egressgw's binaries print their version.
func egressgwVersions(manager, agent string) []run {
	version := regexp.MustCompile(`^egressgw-[a-z-]+ \S+\n$`)
	return []run{
		{manager, []string{"/usr/local/bin/egressgw-manager", "--version"}, version},
		{agent, []string{"/usr/local/bin/egressgw-agent", "--version"}, version},
		{agent, []string{"/usr/local/bin/egressgw-uninstall-wait", "--version"}, version},
	}
}

// wantChartCommandsInImages: every command the chart's containers start (and the tools the uninstall
// hook's script calls) is an executable in the image the chart runs it from.
func wantChartCommandsInImages(t *testing.T, manager, agent string) {
	t.Helper()
	vals, err := helmchart.ParseSet("cloud=aws,aws.clusterName=prod")
	if err != nil {
		t.Fatal(err)
	}
	r, err := helmchart.Render(vals, helmchart.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ kind, name, container, root string }{
		{"Deployment", "egressgw-manager", "manager", manager},
		{"DaemonSet", "egressgw-agent", "agent", agent},
		{"DaemonSet", "egressgw-uninstall", "uninstall", agent},
		{"DaemonSet", "egressgw-uninstall", "done", agent},
		{"Job", "egressgw-uninstall-wait", "wait", agent},
	} {
		ctr, err := r.PodContainer(c.kind, c.name, c.container)
		if err != nil {
			t.Fatal(err)
		}
		wantExecutable(t, c.root, ctr.Command[0], c.name+"/"+c.container)
	}
	for _, tool := range []string{"/usr/bin/pgrep", "/usr/bin/sleep"} {
		wantExecutable(t, agent, tool, "the uninstall hook's script")
	}
}

func wantExecutable(t *testing.T, root, file, who string) {
	t.Helper()
	// The images' own links (/bin -> usr/bin, sh -> dash) are relative, so the host resolves them in root.
	info, err := os.Stat(filepath.Join(root, file))
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s runs %s, which is not an executable in its image: %v", who, file, err)
	}
}

func wantNftAtLeast(t *testing.T, out string, want ...int) {
	t.Helper()
	m := regexp.MustCompile(`^nftables v(\d+)\.(\d+)\.(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("nft --version printed %q", out)
	}
	var got []int
	for _, s := range m[1:] {
		n, _ := strconv.Atoi(s)
		got = append(got, n)
	}
	if slices.Compare(got, want) < 0 {
		t.Errorf("nft is %v; the datapath needs at least %v", got, want)
	}
}

func archive(t *testing.T, dir, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, name+"_*.oci.tar"))
	if len(m) != 1 {
		t.Fatalf("want one %s archive in %s, found %v", name, dir, m)
	}
	return m[0]
}

// unpack reads the OCI archive with go-containerregistry and lays the flattened filesystem of its
// image for this machine's architecture out in a new directory.
func unpack(t *testing.T, file string) string {
	t.Helper()
	return unpackArch(t, file, runtime.GOARCH)
}

// unpackArch lays out the flattened filesystem of the archive's image for arch.
func unpackArch(t *testing.T, file, arch string) string {
	t.Helper()
	lay := t.TempDir()
	if out, err := exec.Command("tar", "-xf", file, "-C", lay).CombinedOutput(); err != nil {
		t.Fatalf("untar %s: %v\n%s", file, err, out)
	}
	img := platformImages(t, lay)[arch]
	if img == nil {
		t.Fatalf("%s has no linux/%s image", file, arch)
	}
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := extract(tar.NewReader(rc), root); err != nil {
		t.Fatalf("extract %s: %v", file, err)
	}
	// A container runtime gives every container /dev; the chroot gets the one device the tools use.
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(root, "dev", "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	return root
}

func extract(tr *tar.Reader, root string) error {
	return eachTarEntry(tr, func(h *tar.Header) error {
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			return os.MkdirAll(p, os.FileMode(h.Mode).Perm())
		case tar.TypeSymlink:
			return os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			return os.Link(filepath.Join(root, filepath.Clean("/"+h.Linkname)), p)
		case tar.TypeReg:
			return writeFile(p, os.FileMode(h.Mode).Perm(), tr)
		}
		return nil
	})
}

// eachTarEntry calls fn for each entry of tr, whose body fn may read from tr, until the end or an error.
func eachTarEntry(tr *tar.Reader, fn func(*tar.Header) error) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h); err != nil {
			return err
		}
	}
}

func writeFile(p string, mode os.FileMode, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// chrootRun runs argv inside root (the image's filesystem, nothing of the host's) and returns stdout.
func chrootRun(t *testing.T, root string, env []string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin"}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("chroot %s %v: %v\n%s%s", filepath.Base(root), argv, err, out, stderr.String())
	}
	return string(out)
}

// imagesDir is where `make images-test` put the image archives; the test skips, saying why, when it runs
// outside that target or without root (needs says what for).
func imagesDir(t *testing.T, needs string) string {
	t.Helper()
	dir := os.Getenv("EGRESSGW_IMAGES")
	if dir == "" {
		t.Skip("EGRESSGW_IMAGES is not set: `make images-test` builds the images (both platforms: about 2 min with a warm Go cache, 1 min with PLATFORMS=linux/amd64; the first arm64 build compiles everything again) and runs this test on them")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: " + needs)
	}
	return dir
}
