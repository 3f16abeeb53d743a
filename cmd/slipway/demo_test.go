package main

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/demo"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

// TestDemo_EndToEnd runs `slipway demo --keep` from the built binary (its app instances are
// that binary's demo-app), checks the summary, looks at the server it left running through
// the API and the app through its proxy, then stops it with Ctrl-C and checks that every
// process it started is gone and its directory removed.
func TestDemo_EndToEnd(t *testing.T) {
	bin := slipwayBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	// The demo's server records where its admin token is in the configuration directory,
	// where the CLI (and this test) finds it.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cmd := exec.CommandContext(ctx, bin, "demo", "--keep")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	// On timeout, stop the demo as a person would, so that it stops what it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 40 * time.Second
	var stderr apitest.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out strings.Builder
	stopped := false
	stop := func() error {
		stopped = true
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return err
		}
		for line := range lines {
			out.WriteString(line + "\n")
		}
		return cmd.Wait()
	}
	t.Cleanup(func() {
		if !stopped {
			_ = stop()
		}
	})

	// Read until the demo's last hint of what to try with the server it keeps running.
	var server string
	for done := false; !done; {
		line, ok := <-lines
		if !ok {
			err := cmd.Wait()
			stopped = true
			t.Fatalf("the demo ended before its summary (%v)\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
		}
		out.WriteString(line + "\n")
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "export SLIPWAY_SERVER="); ok {
			server = v
		}
		done = strings.HasPrefix(strings.TrimSpace(line), "curl ")
	}
	if server == "" {
		t.Fatalf("no export SLIPWAY_SERVER= hint in the output:\n%s", out.String())
	}
	text := out.String()
	for _, want := range []string{
		"v2 step 1/5 setWeight 20",
		"v2 step 2/5 analysis",
		"v2 Completed",
		"v3 Aborted",
		"v3 rolled back: ",
		"requests failed for users of stable: 0\n",
		"v2 (healthy): Completed in ",
		"v3 (bad): Aborted in ",
		"time from the bad canary's first failing answer to all traffic on stable: ",
		"OK: v2 was promoted",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	served := regexp.MustCompile(`requests served by revision: +v1 (\d+) +v2 (\d+) +v3 (\d+) \((\d+) failed\)`).FindStringSubmatch(text)
	if served == nil {
		t.Errorf("no requests-served line like 'v1 N  v2 N  v3 N (N failed)'")
	} else {
		for i, name := range []string{"v1", "v2", "v3", "v3 failed"} {
			if n, _ := strconv.Atoi(served[i+1]); n == 0 {
				t.Errorf("%s: %s, want some", name, served[i+1])
			}
		}
	}
	rollback := regexp.MustCompile(`to all traffic on stable: ([0-9.]+)s`).FindStringSubmatch(text)
	if rollback == nil {
		t.Error("no rollback time in the summary")
	} else if s, _ := strconv.ParseFloat(rollback[1], 64); s <= 0 {
		t.Errorf("rollback time %ss, want more than 0", rollback[1])
	}

	// The server left running answers the API, and the app its proxy, on v2.
	kept := httpapi.NewClient(server, nil)
	kept.SetToken(discoverToken(server)) // as the CLI finds it
	st, err := kept.Status(ctx, "demo")
	if err != nil {
		t.Fatalf("status from the kept server %s: %v", server, err)
	}
	if st.Stable == nil || st.Stable.Version != "v2" || st.Rollout == nil || st.Rollout.Version != "v3" || st.Rollout.Phase != slipway.PhaseAborted {
		t.Errorf("status after the demo: stable %+v, rollout %+v; want stable v2 and v3 Aborted", st.Stable, st.Rollout)
	}
	// Its /metrics exports every series the shipped Grafana dashboard queries, and
	// `slipway analysis` shows the sequential test that failed v3, with its counts.
	checkDashboardSeries(t, server, discoverToken(server))
	an := exec.CommandContext(ctx, bin, "analysis", "demo")
	an.Env = append(os.Environ(), envServer+"="+server)
	anOut, err := an.CombinedOutput()
	if err != nil || !strings.Contains(string(anOut), "Rollout demo-3 of demo: v2 -> v3, Aborted") ||
		!regexp.MustCompile(`Failed  Fail: canary \d+/\d+ failed`).Match(anOut) || !strings.Contains(string(anOut), "judged by: sequential test of builtin error_rate") {
		t.Errorf("slipway analysis demo: %v\n%s", err, anOut)
	}
	appURL := regexp.MustCompile(`curl (http://\S+)`).FindStringSubmatch(text)
	if appURL == nil {
		t.Fatal("no curl hint in the output")
	}
	resp, err := http.Get(appURL[1])
	if err != nil {
		t.Fatalf("GET %s: %v", appURL[1], err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(demo.VersionHeader) != "v2" {
		t.Errorf("GET %s: %d from %q, want 200 from v2", appURL[1], resp.StatusCode, resp.Header.Get(demo.VersionHeader))
	}

	dir := regexp.MustCompile(`data and logs in (\S+)\)`).FindStringSubmatch(text)
	if err := stop(); err != nil {
		t.Fatalf("the demo exited with %v after Ctrl-C\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
	}
	if dir == nil {
		t.Error("the demo did not say where its directory is")
	} else if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("the demo directory %s is still there (%v)", dir[1], err)
	}
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes of %s still running after the demo ended: %v", bin, left)
	}
}

// processesOf lists the pids of running processes whose program is bin (Linux only; none
// elsewhere). Zombies waiting for their parent do not count.
func processesOf(tb testing.TB, bin string) []int {
	tb.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.HasPrefix(cmdline, []byte(bin+"\x00")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func TestStats(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want demoStats
	}{
		{[]float64{0.8}, demoStats{Min: 0.8, Median: 0.8, Max: 0.8, N: 1}},
		{[]float64{0.9, 0.5, 0.7}, demoStats{Min: 0.5, Median: 0.7, Max: 0.9, N: 3}},
		{[]float64{1.0, 0.25, 0.5, 0.75}, demoStats{Min: 0.25, Median: 0.625, Max: 1.0, N: 4}},
	} {
		if got := stats(tc.in); *got != tc.want {
			t.Errorf("stats(%v) = %+v, want %+v", tc.in, *got, tc.want)
		}
	}
	got := sortedVersions(map[string]demoRequest{"v10": {}, "none": {}, "v2": {}, "v1": {}})
	if strings.Join(got, ",") != "v1,v2,v10,none" {
		t.Errorf("sortedVersions = %v, want v1,v2,v10,none", got)
	}
}
