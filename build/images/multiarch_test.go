package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// elfMachines is the ELF machine of each architecture's executables and libraries.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestImagesAreMultiArch: each archive's index.json names one image index, tagged, that lists one
// manifest per platform of the build (EGRESSGW_IMAGES_PLATFORMS, from `make images-test`'s PLATFORMS);
// each manifest's config says its os and architecture, and every ELF file in its layers is a 64-bit
// executable or library of that architecture (the Go binaries and every Debian binary and library).
func TestImagesAreMultiArch(t *testing.T) {
	dir := imagesDir(t, "reads the archives that `make images-test` built")
	want := builtPlatforms(t)
	for _, name := range []string{"egressgw-manager", "egressgw-agent"} {
		t.Run(name, func(t *testing.T) {
			lay := t.TempDir()
			file := archive(t, dir, name)
			if out, err := exec.Command("tar", "-xf", file, "-C", lay).CombinedOutput(); err != nil {
				t.Fatalf("untar %s: %v\n%s", file, err, out)
			}
			imgs := platformImages(t, lay)
			if len(imgs) != len(want) {
				t.Errorf("the index lists %d platforms, want %v", len(imgs), want)
			}
			for _, p := range want {
				img := imgs[p.Architecture]
				if img == nil {
					t.Errorf("no %s manifest in the index", p)
					continue
				}
				wantConfigPlatform(t, img, p)
				n := wantELFMachine(t, img, p.Architecture)
				t.Logf("%s %s: %d ELF files, all %s", name, p, n, elfMachines[p.Architecture])
			}
		})
	}
}

// builtPlatforms are the platforms `make images-test` built (its PLATFORMS).
func builtPlatforms(t *testing.T) []v1.Platform {
	t.Helper()
	want, err := parsePlatforms(cmp.Or(os.Getenv("EGRESSGW_IMAGES_PLATFORMS"), defaultPlatforms))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// platformImages reads an unpacked archive: index.json must name exactly one image index, tagged
// with the version, whose manifests (one per architecture) are returned by architecture.
func platformImages(t *testing.T, lay string) map[string]v1.Image {
	t.Helper()
	top, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 || tm.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json: want one OCI image index, got %+v (%v)", tm, err)
	}
	if tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] == "" {
		t.Errorf("the image index has no org.opencontainers.image.ref.name (the tag): %v", tm.Manifests[0].Annotations)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Image{}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS != "linux" || out[d.Platform.Architecture] != nil {
			t.Fatalf("manifest %s: platform %v; want linux and one manifest per architecture", d.Digest, d.Platform)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[d.Platform.Architecture] = img
	}
	return out
}

func wantConfigPlatform(t *testing.T, img v1.Image, p v1.Platform) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("%s manifest's config says %s/%s", p, cf.OS, cf.Architecture)
	}
}

// wantELFMachine checks every ELF file of the image's layers and returns how many it read.
func wantELFMachine(t *testing.T, img v1.Image, arch string) int {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		err = eachELF(tar.NewReader(rc), func(path string, f *elf.File) {
			n++
			if f.Machine != elfMachines[arch] || f.Class != elf.ELFCLASS64 {
				t.Errorf("%s image: %s is %s %s, want %s 64-bit", arch, path, f.Class, f.Machine, elfMachines[arch])
			}
		})
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 {
		t.Errorf("%s image: no ELF file at all", arch)
	}
	return n
}

// eachELF calls fn for every regular file of the layer that starts with the ELF magic.
func eachELF(tr *tar.Reader, fn func(string, *elf.File)) error {
	return eachTarEntry(tr, func(h *tar.Header) error {
		if h.Typeflag != tar.TypeReg || h.Size < 4 {
			return nil
		}
		data, err := io.ReadAll(tr)
		if err != nil || !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
			return err
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		fn(h.Name, f)
		return nil
	})
}
