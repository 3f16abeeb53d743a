package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"slipway.dev/slipway/slipwaytest"
)

const deployDir = "../../deploy/kubernetes"

// built is the image the tests share: one build of this checkout for this machine's
// architecture.
var built = sync.OnceValues(func() (v1.Image, error) {
	root, err := moduleRoot(context.Background())
	if err != nil {
		return nil, err
	}
	return build(context.Background(), testOptions(root))
})

func testOptions(root string) options {
	return options{Root: root, Arch: runtime.GOARCH, Version: "v0.0.0-test", Epoch: time.Unix(0, 0).UTC()}
}

func image(t *testing.T) v1.Image {
	t.Helper()
	img, err := built()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestBuild_SameDigestTwice: a second build of the same checkout (go build again, the
// layer, the configuration, the manifest) gives the same image digest, and the same bytes
// in an OCI layout and in a tarball. A different SOURCE_DATE_EPOCH gives another digest:
// the date is an input, not the clock.
func TestBuild_SameDigestTwice(t *testing.T) {
	first := image(t)
	root, err := moduleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second, err := build(context.Background(), testOptions(root))
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := digest(t, first), digest(t, second)
	if d1 != d2 {
		t.Fatalf("two builds of one checkout: digests %s and %s", d1, d2)
	}
	t.Logf("image digest %s", d1)

	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		img := map[string]v1.Image{"a": first, "b": second}[n]
		ref := mustTag(t, defaultRepository+":v0.0.0-test")
		if err := writeOCI(filepath.Join(dir, n, "oci"), ref, img); err != nil {
			t.Fatal(err)
		}
		if err := tarball.WriteToFile(filepath.Join(dir, n, "image.tar"), ref, img); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"image.tar", "oci/index.json", "oci/blobs/sha256/" + strings.TrimPrefix(d1.String(), "sha256:")} {
		a, errA := os.ReadFile(filepath.Join(dir, "a", f))
		b, errB := os.ReadFile(filepath.Join(dir, "b", f))
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v, %v", f, errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the two builds", f)
		}
	}

	bin := fileOf(t, first, binaryPath)
	opts := testOptions(root)
	opts.Epoch = time.Unix(1700000000, 0).UTC()
	later, err := assemble(bin, "go-test", opts)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, later) == d1 {
		t.Error("another SOURCE_DATE_EPOCH gave the same digest")
	}
}

// TestImage_Contents: the layer holds the binary, the user's /etc/passwd and /etc/group,
// /tmp and the data volume's directory (the user's own, 0700), every entry dated the epoch,
// and nothing else; the configuration runs slipway as that user.
func TestImage_Contents(t *testing.T) {
	img := image(t)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if !slices.Equal(c.Entrypoint, []string{binaryPath}) || !slices.Equal(c.Cmd, []string{"server"}) || c.User != "65532:65532" ||
		cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("config: entrypoint %q cmd %q user %q os %s arch %s created %v", c.Entrypoint, c.Cmd, c.User, cfg.OS, cfg.Architecture, cfg.Created)
	}
	if !slices.Contains(c.Env, "PATH=/usr/local/bin") || !slices.Contains(c.Env, "SLIPWAY_DATA="+dataDir) {
		t.Errorf("env %q", c.Env)
	}
	if c.Labels["org.opencontainers.image.version"] != "v0.0.0-test" || !strings.HasPrefix(c.Labels["dev.slipway.image.go"], "go1.") {
		t.Errorf("labels %v", c.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v; want one", len(layers), err)
	}
	var got []string
	for h := range entries(t, img) {
		got = append(got, fmt.Sprintf("%s %o %d:%d", h.Name, h.Mode, h.Uid, h.Gid))
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: modified %v, owner names %q %q; want the epoch and none", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
	want := []string{"etc/ 755 0:0", "etc/group 644 0:0", "etc/passwd 644 0:0", "tmp/ 1777 0:0", "usr/ 755 0:0", "usr/local/ 755 0:0",
		"usr/local/bin/ 755 0:0", "usr/local/bin/slipway 755 0:0", "var/ 755 0:0", "var/lib/ 755 0:0", "var/lib/slipway/ 700 65532:65532"}
	if !slices.Equal(got, want) {
		t.Errorf("layer entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if passwd := string(fileOf(t, img, "/etc/passwd")); !strings.Contains(passwd, "\nslipway:x:65532:65532:") {
		t.Errorf("/etc/passwd %q has no slipway user 65532", passwd)
	}
}

// TestImage_IsWhatTheDeploymentExpects holds deploy/kubernetes/deployment.yaml and the image
// to each other: the image's entrypoint runs the Deployment's args, as the user the pod runs
// as, with the data directory on the volume, the API on the port the probes and the Service
// use, and the image the kustomization names.
func TestImage_IsWhatTheDeploymentExpects(t *testing.T) {
	dep := deployment(t)
	cfg, err := image(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if n := dep.Spec.Replicas; n == nil || *n != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v, strategy %q: want one replica, Recreate (one server owns the store)", n, dep.Spec.Strategy.Type)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if len(ctr.Command) != 0 && !slices.Equal(ctr.Command, cfg.Config.Entrypoint) {
		t.Errorf("command %q is not the image's entrypoint %q", ctr.Command, cfg.Config.Entrypoint)
	}
	if repo, _, _ := strings.Cut(ctr.Image, ":"); repo != defaultRepository {
		t.Errorf("image %q is not of %s, which cmd/slipway-image builds", ctr.Image, defaultRepository)
	}
	if len(ctr.Args) == 0 || ctr.Args[0] != "server" {
		t.Fatalf("args %q do not start the server", ctr.Args)
	}

	psc := pod.SecurityContext
	if psc == nil || psc.RunAsUser == nil || psc.RunAsGroup == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		fmt.Sprintf("%d:%d", *psc.RunAsUser, *psc.RunAsGroup) != cfg.Config.User {
		t.Errorf("pod security context %+v does not run as the image's user %s", psc, cfg.Config.User)
	}
	sc := ctr.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context %+v: want a read-only root, no privilege escalation, every capability dropped", sc)
	}
	if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", ctr.Resources)
	}

	args := flagValues(ctr.Args[1:])
	if args["--data"] != dataDir || !slices.Contains(cfg.Config.Env, "SLIPWAY_DATA="+dataDir) {
		t.Errorf("--data %q; the image's data directory is %s", args["--data"], dataDir)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes[mounts[dataVolume].Name]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "slipway-data" {
		t.Errorf("%s is not the claim slipway-data (mounts %v)", dataVolume, ctr.VolumeMounts)
	}
	if v := volumes[mounts["/tmp"].Name]; v.EmptyDir == nil {
		t.Errorf("/tmp is not an emptyDir: SQLite's temporary files need a writable /tmp on a read-only root")
	}
	tokenFile := args["--admin-token-file"]
	m := mounts[filepath.Dir(tokenFile)]
	if v := volumes[m.Name]; tokenFile == "" || v.Secret == nil || v.Secret.SecretName != "slipway-admin-token" || !m.ReadOnly ||
		len(v.Secret.Items) != 1 || v.Secret.Items[0].Path != filepath.Base(tokenFile) {
		t.Errorf("--admin-token-file %q is not the key of the Secret slipway-admin-token mounted read-only", tokenFile)
	}

	port := fmt.Sprint(apiPort)
	if !strings.HasSuffix(args["--listen"], ":"+port) || len(ctr.Ports) != 1 || ctr.Ports[0].ContainerPort != apiPort {
		t.Errorf("--listen %q, ports %v: want the API on %s", args["--listen"], ctr.Ports, port)
	}
	if _, ok := cfg.Config.ExposedPorts[port+"/tcp"]; !ok {
		t.Errorf("the image exposes %v, not %s/tcp", cfg.Config.ExposedPorts, port)
	}
	for what, p := range map[string]*corev1.Probe{"startup": ctr.StartupProbe, "readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != ctr.Ports[0].Name {
			t.Errorf("%s probe %+v: want GET /healthz on the API's port", what, p)
		}
	}

	var kust struct {
		Images []struct{ Name, NewTag string }
	}
	if err := yaml.Unmarshal(readFile(t, "kustomization.yaml"), &kust); err != nil {
		t.Fatal(err)
	}
	if len(kust.Images) != 1 || kust.Images[0].Name != defaultRepository {
		t.Errorf("kustomization images %+v: want %s", kust.Images, defaultRepository)
	}
}

// TestImage_ServesWithTheDeploymentsArgs runs the image's own binary with the Deployment's
// args (its paths moved into a temporary directory, and the sim platform): the API answers
// only with the Secret's token, /healthz answers the probes, the Service's name is an
// allowed Host, no DATA/admin.token is made; the server is killed as a pod is and started
// again on the same data, and the rollout it was in carries on from where it was.
func TestImage_ServesWithTheDeploymentsArgs(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "slipway")
	if err := os.WriteFile(bin, fileOf(t, image(t), binaryPath), 0o755); err != nil { //nolint:gosec // an executable
		t.Fatal(err)
	}
	ctr := deployment(t).Spec.Template.Spec.Containers[0]
	dir := t.TempDir()
	secret := "slw_" + strings.Repeat("5a", 32)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The Deployment's args with the data directory under root and the API on a free port.
	argsIn := func(root string) []string {
		var args []string
		for _, a := range ctr.Args {
			name, _, _ := strings.Cut(a, "=")
			switch name {
			case "--data":
				a = name + "=" + filepath.Join(root, strings.TrimPrefix(dataDir, "/"))
			case "--admin-token-file":
				a = name + "=" + tokenFile
			case "--listen":
				a = name + "=127.0.0.1:0"
			}
			args = append(args, a)
		}
		return args
	}
	// Only the image's environment, as in the container.
	cfg, err := image(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	env := cfg.Config.Env

	// The Deployment's args as they are: the default platform, local, starts its data plane
	// from the same binary.
	root := filepath.Join(dir, "pod")
	srv := startServer(t, bin, argsIn(root), env)
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path, host, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.url+path, nil)
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		path, host, token string
		want              int
	}{
		{"/healthz", "", "", 200},
		{"/api/v1/apps", "", "", 401},
		{"/api/v1/apps", "", "slw_" + strings.Repeat("00", 32), 401},
		{"/api/v1/apps", "", secret, 200},
		{"/api/v1/apps", "slipway.slipway-system.svc:7070", secret, 200},
		{"/api/v1/apps", "evil.example", secret, 403},
	} {
		if got := get(c.path, c.host, c.token); got != c.want {
			t.Errorf("GET %s (Host %q, token %t): %d, want %d", c.path, c.host, c.token != "", got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, dataDir, "admin.token")); !os.IsNotExist(err) {
		t.Errorf("DATA/admin.token: %v; with --admin-token-file the server makes none", err)
	}
	srv.stop(t)

	// On the sim platform (no processes to run): a rollout paused at its second step, the
	// server killed as a pod is, then started again on the same data.
	args := append(argsIn(filepath.Join(dir, "sim")), "--platform=sim", "--sim-ready-delay=50ms", "--poll=50ms")
	srv = startServer(t, bin, args, env)

	app := filepath.Join(dir, "web.yaml")
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--server", srv.url, "--token", secret}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("slipway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, v := range []string{"v1", "v2"} {
		if err := os.WriteFile(app, []byte(strings.ReplaceAll(webApp, "VERSION", v)), 0o600); err != nil {
			t.Fatal(err)
		}
		cli("apply", "-f", app)
		if v == "v1" {
			cli("status", "web", "--wait", "--timeout", "30s")
		}
	}
	var before rolloutStatus
	slipwaytest.Eventually(t, 30*time.Second, "the v2 rollout paused", func() bool {
		before = status(t, cli)
		return before.Rollout.Phase == "Paused"
	})
	srv.kill(t)
	srv = startServer(t, bin, args, env)
	after := status(t, cli)
	if after.Rollout.ID != before.Rollout.ID || after.Rollout.Phase != "Paused" || after.Rollout.Step != before.Rollout.Step || after.Rollout.Weight != before.Rollout.Weight {
		t.Fatalf("after the restart the rollout is %+v; before it was %+v", after.Rollout, before.Rollout)
	}
	cli("promote", "web")
	cli("status", "web", "--wait", "--timeout", "30s")
}

// webApp is an app on the sim platform whose canary pauses for approval at 30%.
const webApp = `apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web}
spec:
  replicas: 2
  version: VERSION
  run: {command: web}
  strategy:
    canary:
      steps:
        - setWeight: 30
        - pause: {}
        - setWeight: 60
`

type rolloutStatus struct {
	Rollout struct {
		ID     string `json:"id"`
		Phase  string `json:"phase"`
		Step   int    `json:"step"`
		Weight int    `json:"weight"`
	} `json:"rollout"`
}

func status(t *testing.T, cli func(...string) string) rolloutStatus {
	t.Helper()
	var s rolloutStatus
	if err := json.Unmarshal([]byte(cli("status", "web", "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// server is a slipway server process the test started.
type server struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startServer starts bin with args and only env, and waits for it to say where it listens;
// a cleanup stops it.
func startServer(t *testing.T, bin string, args, env []string) *server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				urls <- u
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	select {
	case s.url = <-urls:
	case <-s.done:
		t.Fatalf("the server exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not say where it listens: %s", stderr.String())
	}
	return s
}

// stop stops the server as the kubelet does first, with SIGTERM, and waits for it to exit
// cleanly.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not stop within 15 s of SIGTERM")
	}
	if !s.cmd.ProcessState.Success() {
		t.Errorf("the server exited with %v after SIGTERM", s.cmd.ProcessState)
	}
}

// kill kills the server with SIGKILL, as the kubelet does after the grace period, and waits
// for it to be gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
}

// flagValues returns the values of --name=value args.
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if name, value, ok := strings.Cut(a, "="); ok {
			out[name] = value
		}
	}
	return out
}

// deployment returns deployment.yaml, read strictly: a field Kubernetes does not know fails.
func deployment(t *testing.T) appsv1.Deployment {
	t.Helper()
	var dep appsv1.Deployment
	if err := yaml.UnmarshalStrict(readFile(t, "deployment.yaml"), &dep); err != nil {
		t.Fatalf("deployment.yaml: %v", err)
	}
	return dep
}

// readFile returns the file name of deploy/kubernetes.
func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// entries yields the tar header of every entry of the image's layers.
func entries(t *testing.T, img v1.Image) func(func(*tar.Header) bool) {
	return func(yield func(*tar.Header) bool) {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !yield(h) {
					rc.Close()
					return
				}
			}
			rc.Close()
		}
	}
}

// fileOf returns the content of the file at path in the image.
func fileOf(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if "/"+h.Name == path {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
	t.Fatalf("the image has no %s", path)
	return nil
}
