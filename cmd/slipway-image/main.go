// Command slipway-image builds slipway's container image from this repository without a
// container engine: it compiles the static slipway binary (CGO_ENABLED=0, -trimpath, no VCS
// stamp, fixed link flags) and puts it, with an /etc/passwd naming its non-root user, in one
// layer on an empty base, every file and the image dated SOURCE_DATE_EPOCH (or 1970). The
// same commit and Go toolchain give the same image digest on any machine. It writes an OCI
// image layout (--oci DIR) and a tarball that docker load, kind load image-archive and
// ctr images import read (--tar FILE), and prints the image's reference and digest.
//
//	go run ./cmd/slipway-image --version v1.2.3 --tar slipway.tar
//
// Why not a Dockerfile: no daemon or builder is needed (none runs on CI machines, nor in
// many clusters' build jobs), a Dockerfile build stamps times and layer metadata that make
// every build's digest differ unless the builder is told otherwise, and the image holds
// nothing but slipway: no shell, no package manager, nothing to patch. The TLS roots are in
// the binary (golang.org/x/crypto/x509roots/fallback), so the image needs no CA bundle.
//
// Start reading at build; the image's layout (paths, user, environment) is in the
// constants below, which deploy/kubernetes/deployment.yaml relies on (a test checks both).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout.
const (
	// binaryPath is where the slipway executable is; the image's entrypoint.
	binaryPath = "/usr/local/bin/slipway"
	// imageUID and imageGID are the image's non-root user, slipway (the number distroless images
	// use for theirs, so that volume permissions made for those fit).
	imageUID = 65532
	imageGID = 65532
	// dataDir is the server's data directory (SLIPWAY_DATA): a directory below
	// dataVolume, so that the server creates it with its own owner and mode (it refuses
	// a directory another user could write, which a volume's root may be).
	dataDir = "/var/lib/slipway/data"
	// dataVolume is where a volume for the data belongs; in the image it is a directory of
	// the slipway user's, so that the image also runs without a volume.
	dataVolume = "/var/lib/slipway"
	// apiPort is the API's port, as the Deployment's --listen gives it.
	apiPort = 7070
	// defaultRepository names the image when --tag does not.
	defaultRepository = "localhost/slipway"
)

// options says what to build.
type options struct {
	// Root is the module's root directory (with go.mod).
	Root string
	// Arch is the GOARCH of the binary and the image (amd64, arm64, ...).
	Arch string
	// Version is slipway's version, linked into the binary (main.version) and in the
	// image's labels.
	Version string
	// Epoch dates every file and the image itself.
	Epoch time.Time
	// Log receives the build's progress; nil discards it.
	Log io.Writer
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-image:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	epoch, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	opts := options{Arch: runtime.GOARCH, Version: "dev", Epoch: epoch, Log: os.Stderr}
	var tag, ociDir, tarFile string
	flag.StringVar(&opts.Arch, "arch", opts.Arch, "GOARCH of the image (amd64, arm64, ...)")
	flag.StringVar(&opts.Version, "version", opts.Version, "slipway's version: linked into the binary and the image's labels")
	flag.StringVar(&tag, "tag", "", "the image's reference in the tarball and the OCI layout (default "+defaultRepository+":VERSION)")
	flag.StringVar(&ociDir, "oci", "", "write an OCI image layout to this directory")
	flag.StringVar(&tarFile, "tar", "", "write a tarball for docker load, kind load image-archive or ctr images import to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./cmd/slipway-image [flags]\n\nBuild slipway's container image, reproducibly, without a container engine.\nSOURCE_DATE_EPOCH (seconds) dates its files; 0 when unset.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if tag == "" {
		tag = defaultRepository + ":" + opts.Version
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	if opts.Root, err = moduleRoot(ctx); err != nil {
		return err
	}
	img, err := build(ctx, opts)
	if err != nil {
		return err
	}
	if ociDir != "" {
		if err := writeOCI(ociDir, ref, img); err != nil {
			return err
		}
	}
	if tarFile != "" {
		if err := tarball.WriteToFile(tarFile, ref, img); err != nil {
			return fmt.Errorf("write %s: %w", tarFile, err)
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", ref.Name(), digest)
	return nil
}

// sourceDateEpoch parses SOURCE_DATE_EPOCH: seconds since 1970, 0 when unset.
func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// moduleRoot returns the directory of slipway's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run it inside slipway's repository (go env GOMOD names no go.mod)")
	}
	return filepath.Dir(mod), nil
}

// build compiles slipway and returns its image.
func build(ctx context.Context, opts options) (v1.Image, error) {
	bin, goVersion, err := buildBinary(ctx, opts)
	if err != nil {
		return nil, err
	}
	return assemble(bin, goVersion, opts)
}

// buildBinary compiles ./cmd/slipway for linux/opts.Arch and returns the executable and the
// Go version that built it. The environment is pinned: no cgo, the architecture's baseline
// instruction set, no experiments and none of the caller's GOFLAGS.
func buildBinary(ctx context.Context, opts options) ([]byte, string, error) {
	dir, err := os.MkdirTemp("", "slipway-image-")
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	out := filepath.Join(dir, "slipway")
	ldflags := "-s -w -buildid= -X main.version=" + opts.Version
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, "./cmd/slipway")
	cmd.Dir = opts.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.Arch, "GOFLAGS=", "GOEXPERIMENT=",
		"GOAMD64=v1", "GOARM64=v8.0", "GOARM=7", "GO386=sse2")
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "slipway-image: go build (linux/%s, version %s)\n", opts.Arch, opts.Version)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	v, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return nil, "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	bin, err := os.ReadFile(out)
	return bin, strings.TrimSpace(string(v)), err
}

// assemble makes the image of the slipway executable bin, built by goVersion: one layer
// on an empty base, with the configuration the Deployment relies on.
func assemble(bin []byte, goVersion string, opts options) (v1.Image, error) {
	fs, err := rootFS(bin, opts.Epoch)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(fs)), nil },
		tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	created := v1.Time{Time: opts.Epoch}
	cfg := &v1.ConfigFile{
		Architecture: opts.Arch,
		OS:           "linux",
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint:   []string{binaryPath},
			Cmd:          []string{"server"},
			User:         fmt.Sprintf("%d:%d", imageUID, imageGID),
			Env:          []string{"PATH=" + filepath.Dir(binaryPath), "SLIPWAY_DATA=" + dataDir},
			WorkingDir:   "/",
			ExposedPorts: map[string]struct{}{strconv.Itoa(apiPort) + "/tcp": {}},
			Volumes:      map[string]struct{}{dataVolume: {}},
			Labels: map[string]string{
				"org.opencontainers.image.title":   "slipway",
				"org.opencontainers.image.version": opts.Version,
				"org.opencontainers.image.created": opts.Epoch.Format(time.RFC3339),
				"dev.slipway.image.go":             goVersion,
			},
		},
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created:   created,
		CreatedBy: "slipway-image " + opts.Version + " (" + goVersion + ")",
		Comment:   "the slipway binary, /etc/passwd and /etc/group",
	}})
}

// entry is one file or directory of the image.
type entry struct {
	path     string
	mode     int64
	uid, gid int
	body     []byte // nil for a directory
}

// rootFS returns the image's one layer as a tar stream: its entries in a fixed order, each
// dated epoch, owned by root unless said otherwise, with no user or group names.
func rootFS(bin []byte, epoch time.Time) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nslipway:x:%d:%d:slipway:%s:/sbin/nologin\n", imageUID, imageGID, dataVolume)
	group := fmt.Sprintf("root:x:0:\nslipway:x:%d:\n", imageGID)
	entries := []entry{
		{path: "etc/", mode: 0o755},
		{path: "etc/group", mode: 0o644, body: []byte(group)},
		{path: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{path: "tmp/", mode: 0o1777},
		{path: "usr/", mode: 0o755},
		{path: "usr/local/", mode: 0o755},
		{path: "usr/local/bin/", mode: 0o755},
		{path: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, body: bin},
		{path: "var/", mode: 0o755},
		{path: "var/lib/", mode: 0o755},
		{path: strings.TrimPrefix(dataVolume, "/") + "/", mode: 0o700, uid: imageUID, gid: imageGID},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.path, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: epoch, Format: tar.FormatPAX}
		if e.body == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image layer: %w", err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("image layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// writeOCI writes img to an OCI image layout in dir (made when missing), its index naming
// it ref.
func writeOCI(dir string, ref name.Tag, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	err = p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.Name(),
		"io.containerd.image.name":          ref.Name(),
	}))
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	return nil
}
