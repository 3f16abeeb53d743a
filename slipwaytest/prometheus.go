package slipwaytest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// PrometheusStartTimeout bounds how long StartPrometheus waits for the server to be ready.
const PrometheusStartTimeout = 60 * time.Second

// Prometheus is a real Prometheus server (the prometheus binary on PATH, Debian's package
// prometheus) started for one test: on 127.0.0.1, with its own configuration and storage in
// a temporary directory, scraping its targets every second.
type Prometheus struct {
	// URL is the server's base URL, like http://127.0.0.1:40123.
	URL string
}

// StartPrometheus starts a Prometheus server that scrapes targets and waits until it is
// ready; a cleanup stops it. Without a prometheus binary the test fails when the CI
// environment variable is set (CI installs it: .ci/run), and is skipped otherwise.
func StartPrometheus(tb testing.TB, targets ...*Target) *Prometheus {
	tb.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		const hint = "the Prometheus tests need a real server: apt-get install -y prometheus"
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s (CI is set, so a missing server fails the test): %v", hint, err)
		}
		tb.Skipf("%s (skipped because CI is not set): %v", hint, err)
	}
	dir := tb.TempDir()
	var hosts []string
	for _, t := range targets {
		hosts = append(hosts, strconv.Quote(t.Host()))
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [%s]
`, strings.Join(hosts, ", "))
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	addr := freeAddr(tb)
	var out lockedBuffer
	ctx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Stopping asks Prometheus to shut down cleanly, and kills it when it has not within 10s.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		stop()
		tb.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error // set before exited is closed
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		stop()
		<-exited
	})
	p := &Prometheus{URL: "http://" + addr}
	ready := func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	Eventually(tb, PrometheusStartTimeout, "prometheus to be ready at "+p.URL, ready)
	select {
	case <-exited:
		tb.Fatalf("prometheus exited: %v\n%s", waitErr, out.String())
	default:
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment ago: Prometheus
// takes no port 0 it would then report.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return addr
}

// Target is a metrics endpoint a Prometheus of StartPrometheus scrapes: it serves the series
// the test sets, in Prometheus's text format, and counts its scrapes, so that a test can
// wait until Prometheus has seen a change instead of sleeping.
type Target struct {
	srv     *httptest.Server
	mu      sync.Mutex
	series  map[string]float64
	scrapes atomic.Int64
}

// NewTarget starts a Target serving /metrics; a cleanup stops it.
func NewTarget(tb testing.TB) *Target {
	tb.Helper()
	t := &Target{series: map[string]float64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		t.scrapes.Add(1) // before reading the series: see Scraped
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(t.text()))
	})
	t.srv = httptest.NewServer(mux)
	tb.Cleanup(t.srv.Close)
	return t
}

// Host returns the target's host:port.
func (t *Target) Host() string { return strings.TrimPrefix(t.srv.URL, "http://") }

// Set sets a series, written as in the text format (`http_requests_total{code="500"}`), to v.
func (t *Target) Set(series string, v float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.series[series] = v
}

// Add adds d to a series (a counter's increment).
func (t *Target) Add(series string, d float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.series[series] += d
}

// Scraped waits until Prometheus has stored what the target serves now: until two more
// scrapes have begun. A scrape is counted before it reads the series, so the first of them
// reads them as they are now, and Prometheus begins the next scrape of a target only after
// it has stored the last.
func (t *Target) Scraped(tb testing.TB) {
	tb.Helper()
	want := t.scrapes.Load() + 2
	Eventually(tb, 30*time.Second, "two scrapes of "+t.Host(), func() bool { return t.scrapes.Load() >= want })
}

func (t *Target) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, s := range slices.Sorted(maps.Keys(t.series)) {
		fmt.Fprintf(&b, "%s %s\n", s, strconv.FormatFloat(t.series[s], 'g', -1, 64))
	}
	return b.String()
}

// lockedBuffer is a bytes.Buffer a child process and a test may use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
