// Command images builds egressgw's container images as OCI image archives without a container daemon
// (`make images`): Go binaries built here, the agent's userland (iptables with its nft and legacy
// backends, ipset, nftables, conntrack, iproute2, procps, dash) taken from this machine's Debian
// packages with their library dependencies, assembled with go-containerregistry. The Dockerfiles
// beside this file build the same images with Docker.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

type options struct {
	out, version, arch, debCache, repo string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "out", "_output/images", "directory of the image archives")
	fs.StringVar(&o.version, "version", "dev", "the images' tag and the binaries' version")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "GOARCH of the images; the Debian packages are this machine's architecture, so another arch needs `dpkg --add-architecture` and apt's packages of it")
	fs.StringVar(&o.debCache, "deb-cache", filepath.Join(os.Getenv("HOME"), ".cache", "egressgw", "debs"), "where downloaded .deb files are kept between builds")
	fs.StringVar(&o.repo, "repo", ".", "the repository's top directory")
}

func main() {
	o := &options{}
	o.addFlags(flag.CommandLine)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	files, err := buildAll(context.Background(), o, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(files, "\n"))
}

// buildAll builds both images and returns the archives' paths.
func buildAll(ctx context.Context, o *options, log *slog.Logger) ([]string, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	bins, err := buildBinaries(ctx, o)
	if err != nil {
		return nil, err
	}
	specs := []func(context.Context, *options, map[string][]byte) (imageSpec, error){managerImage, agentImage}
	var files []string
	for _, mk := range specs {
		s, err := mk(ctx, o, bins)
		if err != nil {
			return nil, err
		}
		img, err := s.build()
		if err != nil {
			return nil, err
		}
		file := filepath.Join(o.out, fmt.Sprintf("%s_%s_%s.oci.tar", s.name, o.version, o.arch))
		if err := writeArchive(img, s, file); err != nil {
			return nil, fmt.Errorf("write %s: %w", file, err)
		}
		d, _ := img.Digest()
		log.Info("image built", "image", s.name, "archive", file, "digest", d.String())
		files = append(files, file)
	}
	return files, nil
}
