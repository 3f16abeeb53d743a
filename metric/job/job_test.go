package job

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func shell(script string) slipway.Metric {
	return slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "sh", Args: []string{"-c", script}}}}
}

func result(tb testing.TB, v any) (int, string) {
	tb.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		tb.Fatalf("result %#v is not a map", v)
	}
	code, ok := m["exitCode"].(float64)
	if !ok {
		tb.Fatalf("exitCode %#v is not a float64", m["exitCode"])
	}
	out, ok := m["output"].(string)
	if !ok {
		tb.Fatalf("output %#v is not a string", m["output"])
	}
	return int(code), out
}

func TestProvider_Results(t *testing.T) {
	t.Setenv("SLIPWAY_JOB_TEST_INHERITED", "from-server")
	tests := []struct {
		name     string
		metric   slipway.Metric
		wantCode int
		wantOut  string
	}{
		{name: "exit 0", metric: shell("true"), wantCode: 0},
		{name: "exit 3 is a result, not an error", metric: shell("exit 3"), wantCode: 3},
		{name: "stdout and stderr together", metric: shell("echo out; echo err >&2; exit 1"), wantCode: 1, wantOut: "out\nerr\n"},
		{name: "killed by its own signal", metric: shell("kill -TERM $$"), wantCode: 128 + int(syscall.SIGTERM)},
		{name: "args are passed as they are", metric: slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{
			Command: "printf", Args: []string{"%s|%s", "a b", "$HOME"},
		}}}, wantOut: "a b|$HOME"},
		{name: "env is added to the server's", metric: func() slipway.Metric {
			m := shell(`echo "$CANARY $SLIPWAY_JOB_TEST_INHERITED"`)
			m.Provider.Job.Env = map[string]string{"CANARY": "v2"}
			return m
		}(), wantOut: "v2 from-server\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New().Measure(context.Background(), tt.metric)
			if err != nil {
				t.Fatal(err)
			}
			code, out := result(t, v)
			if code != tt.wantCode || out != tt.wantOut {
				t.Fatalf("result = %d %q, want %d %q", code, out, tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestProvider_OutputIsTruncated(t *testing.T) {
	v, err := New().Measure(context.Background(), shell(`i=0; while [ $i -lt 300 ]; do echo "line $i of a chatty job"; i=$((i+1)); done`))
	if err != nil {
		t.Fatal(err)
	}
	code, out := result(t, v)
	if code != 0 || len(out) != MaxOutput || !strings.HasPrefix(out, "line 0 of a chatty job\n") {
		t.Fatalf("exit %d, %d bytes of output starting %.30q; want exit 0 and the first %d bytes", code, len(out), out, MaxOutput)
	}
}

func TestProvider_Errors(t *testing.T) {
	t.Run("command that cannot start", func(t *testing.T) {
		m := slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: filepath.Join(t.TempDir(), "missing")}}}
		if _, err := New().Measure(context.Background(), m); err == nil || !strings.Contains(err.Error(), "start") {
			t.Fatalf("err = %v, want a start error", err)
		}
	})
	t.Run("not a job metric", func(t *testing.T) {
		_, err := New().Measure(context.Background(), slipway.Metric{Name: "w", Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://x"}}})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
	t.Run("no command", func(t *testing.T) {
		_, err := New().Measure(context.Background(), slipway.Metric{Name: "j", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{}}})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
}

// childScript starts a long sleep in the background, writes its pid to pidFile, then waits
// for it, so that only killing the whole process group stops both.
func childScript(pidFile string) string {
	return `sleep 60 & echo $! > ` + pidFile + `; wait`
}

// readPID polls for the pid the script wrote.
func readPID(tb testing.TB, path string) int {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no pid in %s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGone polls until pid no longer runs (gone, or a zombie no one has reaped yet).
func waitGone(tb testing.TB, pid int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
				return
			}
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			tb.Fatalf("child %d still runs", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProvider_KillsProcessGroup(t *testing.T) {
	t.Run("at the metric's timeout", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		m := shell(childScript(pidFile))
		m.Provider.Job.Timeout = slipway.Duration(300 * time.Millisecond)
		_, err := New().Measure(context.Background(), m)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") {
			t.Fatalf("err = %v, want a timeout after 300ms", err)
		}
		waitGone(t, readPID(t, pidFile))
	})
	t.Run("when the caller cancels", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := New().Measure(ctx, shell(childScript(pidFile)))
			done <- err
		}()
		pid := readPID(t, pidFile)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		waitGone(t, pid)
	})
	t.Run("left behind after the command exits", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		v, err := New().Measure(context.Background(), shell(`sleep 60 & echo $! > `+pidFile+`; echo started`))
		if err != nil {
			t.Fatal(err)
		}
		if code, out := result(t, v); code != 0 || out != "started\n" {
			t.Fatalf("result = %d %q", code, out)
		}
		waitGone(t, readPID(t, pidFile))
	})
}
