package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageSpec is what one image is made of.
type imageSpec struct {
	name       string // egressgw-manager, egressgw-agent
	arch       string
	version    string
	layers     [][]byte // uncompressed layer tars, base first
	entrypoint []string
	user       string
	env        []string
}

// build assembles the image in memory.
func (s imageSpec) build() (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, data := range s.layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("%s layer %d: %w", s.name, i, err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", s.arch, v1.Time{Time: epoch}
	cf.Config.Entrypoint, cf.Config.User = s.entrypoint, s.user
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin"}, s.env...)
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   s.name,
		"org.opencontainers.image.version": s.version,
		"org.opencontainers.image.source":  "https://github.com/egressgw/egressgw",
	}
	return mutate.ConfigFile(img, cf)
}

// writeArchive writes the image as an OCI image layout packed into one tar file (what
// `skopeo copy oci-archive:FILE ...`, `podman load` and `ctr images import` read): index.json names one
// image index, tagged with the image's name and version, that lists one manifest per platform, as a
// registry serves a multi-arch image. It returns the index's digest.
func writeArchive(name, version string, imgs []platformImage, file string) (string, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range imgs {
		p := pi.platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pi.img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	digest, err := idx.Digest()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "egressgw-oci-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	lay, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	ref := fmt.Sprintf("docker.io/egressgw/%s:%s", name, version)
	if err := lay.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version, "io.containerd.image.name": ref})); err != nil {
		return "", err
	}
	return digest.String(), tarDir(dir, file)
}

// tarDir packs dir's files (regular files and directories only, as an OCI layout has) into file.
func tarDir(dir, file string) error {
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), epoch, 0, 0, "", ""
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
