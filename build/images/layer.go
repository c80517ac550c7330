package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"
)

// epoch is every file's time in the images, so that the same inputs give the same digests.
var epoch = time.Unix(0, 0).UTC()

// usrMerged maps the top-level directories that Debian merged into /usr; packages of the release this
// machine runs still ship some files there, and the image has them as symlinks.
var usrMerged = map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}

// skipped are package contents an image has no use for.
var skipped = []string{"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/", "usr/share/bash-completion/", "etc/init.d/", "lib/systemd/", "usr/lib/systemd/"}

// rootfs is a layer being assembled: entries by path, written sorted.
type rootfs struct {
	entries map[string]*entry
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func newRootfs() *rootfs {
	r := &rootfs{entries: map[string]*entry{}}
	for _, d := range []string{"etc", "usr", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/local/bin", "tmp", "run", "var", "var/run"} {
		r.dir(d, 0o755)
	}
	r.entries["tmp"].hdr.Mode = 0o1777
	for from, to := range usrMerged {
		r.symlink(from, to)
	}
	return r
}

func (r *rootfs) dir(p string, mode int64) {
	r.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, ModTime: epoch}}
}

func (r *rootfs) symlink(p, target string) {
	r.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func (r *rootfs) file(p string, mode int64, data []byte) {
	r.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: epoch}, data: data}
}

// addDeb copies a package's files into the layer, moving merged directories under /usr.
func (r *rootfs) addDeb(ctx context.Context, deb string) error {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w", deb, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", deb, err)
		}
		p := mergedPath(path.Clean(strings.TrimPrefix(h.Name, "./")))
		if p == "." || isSkipped(p) {
			continue
		}
		if err := r.addEntry(p, h, tr); err != nil {
			return fmt.Errorf("%s: %s: %w", deb, p, err)
		}
	}
}

func (r *rootfs) addEntry(p string, h *tar.Header, body io.Reader) error {
	switch h.Typeflag {
	case tar.TypeDir:
		if _, ok := r.entries[p]; !ok {
			r.dir(p, h.Mode)
		}
	case tar.TypeSymlink:
		r.symlink(p, h.Linkname)
	case tar.TypeLink:
		r.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: p, Linkname: mergedPath(path.Clean(strings.TrimPrefix(h.Linkname, "./"))), Mode: h.Mode, ModTime: epoch}}
	case tar.TypeReg:
		data, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		r.file(p, h.Mode, data)
	}
	return nil
}

func mergedPath(p string) string {
	top, rest, _ := strings.Cut(p, "/")
	if to, ok := usrMerged[top]; ok {
		if rest == "" {
			return to
		}
		return to + "/" + rest
	}
	return p
}

func isSkipped(p string) bool {
	for _, s := range skipped {
		if strings.HasPrefix(p+"/", s) {
			return true
		}
	}
	return false
}

// tar writes the layer, parents before children, with root ownership.
func (r *rootfs) tar() ([]byte, error) {
	var names []string
	for p := range r.entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		e := r.entries[p]
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
