package httpapi_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
	"slipway.dev/slipway/logfile"
	"slipway.dev/slipway/slipwaytest"
)

// dirLogs serves the <instance>.log files of a directory (and their rotated
// <instance>.log.N), as the local platform lays them out.
type dirLogs struct{ dir string }

func (d dirLogs) LogInstances(_ context.Context, app, revision string) ([]string, error) {
	paths, _ := filepath.Glob(filepath.Join(d.dir, revision+"*.log"))
	if len(paths) == 0 {
		return nil, slipway.Errorf(slipway.ENOTFOUND, "no logs for app %s", app)
	}
	var ids []string
	for _, p := range paths {
		ids = append(ids, strings.TrimSuffix(filepath.Base(p), ".log"))
	}
	slices.Sort(ids)
	return ids, nil
}

func (d dirLogs) TailLog(_ context.Context, _, instance string, n int) ([][]byte, slipway.LogPosition, error) {
	lines, end, err := logfile.Tail(filepath.Join(d.dir, instance+".log"), n)
	return lines, slipway.LogPosition(end), err
}

func (d dirLogs) ReadLog(_ context.Context, _, instance string, from slipway.LogPosition) ([][]byte, slipway.LogPosition, error) {
	lines, end, err := logfile.ReadFrom(filepath.Join(d.dir, instance+".log"), int64(from))
	return lines, slipway.LogPosition(end), err
}

// countingLogs is dirLogs that counts the reads of a follow.
type countingLogs struct {
	dirLogs
	reads atomic.Int64
}

func (c *countingLogs) ReadLog(ctx context.Context, app, instance string, from slipway.LogPosition) ([][]byte, slipway.LogPosition, error) {
	defer c.reads.Add(1)
	return c.dirLogs.ReadLog(ctx, app, instance, from)
}

func logsServer(t *testing.T, src slipway.LogSource) *httpapi.Client {
	t.Helper()
	srv := apitest.NewServer(t, httpapi.Config{Logs: src})
	return apitest.NewClient(srv.URL)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestLogs_TailPrefixesInstances(t *testing.T) {
	dir := t.TempDir()
	appendFile(t, filepath.Join(dir, "abc-0.log"), "one\ntwo\nthree\n")
	appendFile(t, filepath.Join(dir, "abc-0.log.1"), "rotated\n")
	appendFile(t, filepath.Join(dir, "abc-1.log"), "other\n")
	c := logsServer(t, dirLogs{dir})
	var b strings.Builder
	if err := c.Logs(context.Background(), "web", "", 2, false, &b); err != nil {
		t.Fatal(err)
	}
	want := "abc-0 | two\nabc-0 | three\nabc-1 | other\n"
	if b.String() != want {
		t.Fatalf("logs:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestLogs_Errors(t *testing.T) {
	c := logsServer(t, dirLogs{t.TempDir()})
	if err := c.Logs(context.Background(), "web", "", -1, false, &strings.Builder{}); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("no logs: %v", err)
	}
	if err := c.Logs(context.Background(), "nope", "", -1, false, &strings.Builder{}); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("unknown app: %v", err)
	}
	none := logsServer(t, nil)
	err := none.Logs(context.Background(), "web", "", -1, false, &strings.Builder{})
	if slipway.ErrorCode(err) != slipway.ENOTFOUND || !strings.Contains(err.Error(), "keeps no instance logs") {
		t.Fatalf("platform without logs: %v", err)
	}
}

// waitFor waits until what a follow wrote to out holds want.
func waitFor(t *testing.T, out *apitest.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("followed logs %q lack %q", out.String(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLogs_FollowStreamsNewLinesAndRotation(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "abc-0.log")
	appendFile(t, live, "old\n")
	src := &countingLogs{dirLogs: dirLogs{dir}}
	c := logsServer(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &apitest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "web", "", 0, true, out) }()
	slipwaytest.Eventually(t, 5*time.Second, "the follow reading the log", func() bool { return src.reads.Load() > 0 })
	appendFile(t, live, "new line\n")
	waitFor(t, out, "abc-0 | new line\n")
	// Rotation truncates the live file: reading starts over.
	if err := os.Truncate(live, 0); err != nil {
		t.Fatal(err)
	}
	seen := src.reads.Load()
	slipwaytest.Eventually(t, 5*time.Second, "the follow reading the truncated log", func() bool { return src.reads.Load() > seen+1 }) // a whole read after it
	appendFile(t, live, "after rotation\n")
	waitFor(t, out, "abc-0 | after rotation\n")
	// A new instance's file is picked up.
	appendFile(t, filepath.Join(dir, "abc-1.log"), "hello from 1\n")
	waitFor(t, out, "abc-1 | hello from 1\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if strings.Contains(out.String(), "old") {
		t.Fatalf("tail 0 printed old lines: %q", out.String())
	}
}
