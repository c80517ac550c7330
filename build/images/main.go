// Command images builds egressgw's container images as OCI image archives without a container daemon
// (`make images`): Go binaries built here, the agent's userland (iptables with its nft and legacy
// backends, ipset, nftables, conntrack, iproute2, procps, dash) taken from Debian's packages of each
// architecture with their library dependencies, assembled with go-containerregistry. The Dockerfiles
// beside this file build the same images with Docker.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

type options struct {
	out, version, platforms, debCache, aptDir, repo string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	cache := filepath.Join(os.Getenv("HOME"), ".cache", "egressgw")
	fs.StringVar(&o.out, "out", "_output/images", "directory of the image archives")
	fs.StringVar(&o.version, "version", "dev", "the images' tag and the binaries' version")
	fs.StringVar(&o.platforms, "platforms", defaultPlatforms, "comma-separated platforms of each image's index (linux/amd64, linux/arm64); the Go binaries are cross-compiled and the Debian packages of another architecture than this machine's come through a private apt state (-apt-dir)")
	fs.StringVar(&o.debCache, "deb-cache", filepath.Join(cache, "debs"), "where downloaded .deb files are kept between builds")
	fs.StringVar(&o.aptDir, "apt-dir", filepath.Join(cache, "apt"), "where the package lists of foreign architectures are kept (this machine's apt and dpkg stay untouched)")
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

// platformBuild is what one platform's images are made of: its binaries and its packages' apt.
type platformBuild struct {
	platform v1.Platform
	apt      apt
	bins     map[string][]byte
}

// platformImage is one platform's manifest of an image.
type platformImage struct {
	platform v1.Platform
	img      v1.Image
}

var imageMakers = []func(context.Context, *options, platformBuild) (imageSpec, error){managerImage, agentImage}

// buildAll builds both images for every platform and writes one archive per image, its index listing
// the platforms; it returns the archives' paths.
func buildAll(ctx context.Context, o *options, log *slog.Logger) ([]string, error) {
	platforms, err := parsePlatforms(o.platforms)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	var names []string
	images := map[string][]platformImage{}
	for _, p := range platforms {
		pb, err := preparePlatform(ctx, o, p)
		if err != nil {
			return nil, err
		}
		for _, mk := range imageMakers {
			s, err := mk(ctx, o, pb)
			if err != nil {
				return nil, err
			}
			img, err := s.build()
			if err != nil {
				return nil, err
			}
			if images[s.name] == nil {
				names = append(names, s.name)
			}
			images[s.name] = append(images[s.name], platformImage{p, img})
		}
	}
	var files []string
	for _, name := range names {
		file, err := writeImage(o, name, images[name], log)
		if err != nil {
			return nil, err
		}
		files = append(files, file)
	}
	return files, nil
}

func preparePlatform(ctx context.Context, o *options, p v1.Platform) (platformBuild, error) {
	a, err := aptFor(ctx, p.Architecture, o.aptDir)
	if err != nil {
		return platformBuild{}, err
	}
	bins, err := buildBinaries(ctx, o, p.Architecture)
	return platformBuild{platform: p, apt: a, bins: bins}, err
}

// writeImage writes the image's archive, replacing the single-platform archives of earlier builds of
// the same version (NAME_VERSION_ARCH.oci.tar).
func writeImage(o *options, name string, imgs []platformImage, log *slog.Logger) (string, error) {
	stale, _ := filepath.Glob(filepath.Join(o.out, fmt.Sprintf("%s_%s_*.oci.tar", name, o.version)))
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return "", err
		}
	}
	file := filepath.Join(o.out, fmt.Sprintf("%s_%s.oci.tar", name, o.version))
	digest, err := writeArchive(name, o.version, imgs, file)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	var platforms []string
	for _, pi := range imgs {
		platforms = append(platforms, pi.platform.String())
	}
	log.Info("image built", "image", name, "archive", file, "index", digest, "platforms", strings.Join(platforms, ","))
	return file, nil
}
