// Package kubetest starts a real Kubernetes control plane for tests (scripts/kube-up.sh):
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1, with kwok
// standing in for the kubelet of one fake node and the Gateway API's standard CRDs
// installed. It is a package of its own, apart from slipwaytest, because it links
// client-go: only the tests that use a cluster pay for it.
//
// Start reading at Shared (one cluster per test binary, with Main in TestMain) and Start (a
// cluster of the test's own).
package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// StartTimeout bounds how long starting a test cluster may take. Its binaries are built
// beforehand (scripts/kube-up.sh build, which make test runs through scripts/test-deps); a
// start takes about ten seconds.
const StartTimeout = 3 * time.Minute

// UnreadyLabel is the label that keeps a pod of a test cluster Running but never Ready
// (value "true"): for a revision whose pods never pass their readiness probe. Every other
// pod is Ready about a second after it is scheduled.
const UnreadyLabel = "slipway.dev/test-unready"

// Cluster is a real Kubernetes control plane started for tests by scripts/kube-up.sh: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1, with kwok
// standing in for the kubelet of one fake node (so pods are scheduled and become Ready
// without containers) and the Gateway API's standard CRDs installed. No traffic flows
// through it: test what is written to it and how readiness is followed, not routing.
type Cluster struct {
	// Dir holds the cluster's state, certificates and component logs (Dir/logs).
	Dir string
	// Kubeconfig is the path of a kubeconfig for a cluster administrator (system:masters).
	Kubeconfig string
	// Config is the client configuration of Kubeconfig.
	Config *rest.Config
	// Client is a typed client with Config.
	Client kubernetes.Interface

	script string
}

// errUnavailable marks a start that failed because the tooling is missing (the binaries
// are not built, or openssl or bash is missing), as opposed to a cluster that did not come up.
var errUnavailable = errors.New("the Kubernetes test cluster is not available")

// Start starts a test cluster of the test's own in a temporary directory (about ten
// seconds); a cleanup stops it, and prints the end of each component's log when the test
// failed. Without built binaries (or openssl) the test fails when the CI environment
// variable is set (make test builds them first) and is skipped otherwise. Tests that can
// share a cluster use Shared, which starts one per test binary.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	k, err := start(tb.TempDir())
	if err != nil {
		failed(tb, err)
	}
	tb.Cleanup(func() {
		if err := k.stop(); err != nil {
			tb.Errorf("stop the test cluster: %v", err)
		}
		if tb.Failed() {
			tb.Logf("test cluster logs (%s):\n%s", k.Dir, k.Logs())
		}
	})
	return k
}

// shared is the cluster of Shared: started on first use, stopped by Run.
var shared struct {
	mu      sync.Mutex
	main    bool // Run is running the tests
	started bool
	cluster *Cluster
	err     error
}

// Main runs the tests of m, as a TestMain does, stops the cluster Shared started, if any,
// and exits with m's code (Run). A package whose tests share a cluster has:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests of m and then stops the cluster Shared started, if any; it returns
// m's code, for a TestMain that does more (a goroutine-leak check) before it exits. When a
// test failed, it prints the end of each component's log and keeps the cluster's directory.
func Run(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	k := shared.cluster
	shared.cluster, shared.started, shared.main = nil, false, false
	shared.mu.Unlock()
	if k == nil {
		return code
	}
	if err := k.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the test cluster: %v\n", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "test cluster logs (kept in %s):\n%s", k.Dir, k.Logs())
	} else if err := os.RemoveAll(k.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "remove the test cluster's directory: %v\n", err)
	}
	return code
}

// Shared returns the test binary's one test cluster, starting it on the first call; Main
// (or Run) stops it after the last test. Tests that share it keep to namespaces of their
// own (Namespace). Missing tooling skips or fails the test as for Start.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		tb.Fatal("Shared needs the package's TestMain to run kubetest.Main(m) (or Run), which stops the cluster")
	}
	if !shared.started {
		shared.started = true
		dir, err := os.MkdirTemp("", "slipway-kube-")
		if err == nil {
			shared.cluster, err = start(dir)
		}
		shared.err = err
		if errors.Is(err, errUnavailable) {
			_ = os.RemoveAll(dir)
		}
	}
	if shared.err != nil {
		failed(tb, shared.err)
	}
	return shared.cluster
}

// failed ends a test whose cluster did not start: a skip when the tooling is missing and
// CI is not set, a failure otherwise.
func failed(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errUnavailable) && os.Getenv("CI") == "" {
		tb.Skipf("%v (skipped because CI is not set)", err)
	}
	tb.Fatal(err)
}

// Namespace creates a namespace with a name of its own for the test (its name, lowercased,
// and a suffix) and returns the name; a cleanup deletes it.
func (k *Cluster) Namespace(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(tb.Name())}}
	ns, err := k.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create a namespace: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := k.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			tb.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// namespacePrefix turns a test's name into the start of a namespace's name: lowercase
// letters, digits and dashes, at most 50 characters, ending in a dash.
func namespacePrefix(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if len(s) > 50 {
		s = strings.TrimSuffix(s[:50], "-")
	}
	if s == "" {
		s = "test"
	}
	return s + "-"
}

// Logs returns the last lines of each component's log.
func (k *Cluster) Logs() string {
	files, _ := filepath.Glob(filepath.Join(k.Dir, "logs", "*.log"))
	slices.Sort(files)
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", f, tail(f, 40))
	}
	return b.String()
}

// tail returns the last n lines of the file f.
func tail(f string, n int) string {
	data, err := os.ReadFile(f)
	if err != nil {
		return err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// start starts a cluster in dir with scripts/kube-up.sh.
func start(dir string) (*Cluster, error) {
	script, err := scriptPath()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		return nil, fmt.Errorf("%w: it needs openssl (apt-get install -y openssl)", errUnavailable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, script, "cached").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w (make test builds it first, in about 10 minutes, once): %s",
			errUnavailable, bytes.TrimSpace(out))
	}
	cmd := exec.CommandContext(ctx, script, "up", dir)
	// The script leaves a watchdog that stops the cluster if this process ends without
	// stopping it (a test binary killed by its timeout).
	cmd.Env = append(os.Environ(), "SLIPWAY_KUBE_OWNER_PID="+strconv.Itoa(os.Getpid()))
	k := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig"), script: script}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start the test cluster: %s up %s: %w\n%s\n%s", script, dir, err, out, k.Logs())
	}
	k.Config, err = clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err == nil {
		// Tests create many objects quickly; client-go's default of 5 requests a second
		// would make them wait.
		k.Config.QPS, k.Config.Burst = 200, 400
		k.Client, err = kubernetes.NewForConfig(k.Config)
	}
	if err != nil {
		_ = k.stop()
		return nil, fmt.Errorf("a client of the test cluster: %w", err)
	}
	return k, nil
}

// stop stops every component of the cluster; their logs stay in Dir/logs.
func (k *Cluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, k.script, "down", k.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s down %s: %w: %s", k.script, k.Dir, err, out)
	}
	return nil
}

// scriptPath finds scripts/kube-up.sh in the module's root, the first directory above the
// working directory (a test's package directory) that holds a go.mod.
func scriptPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", "kube-up.sh"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod above the working directory, so no scripts/kube-up.sh", errUnavailable)
		}
		dir = parent
	}
}
