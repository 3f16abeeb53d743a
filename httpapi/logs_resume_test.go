package httpapi_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"

	"slipway.dev/slipway/slipwaytest"
)

// rotate rotates a live log as the local platform does: copy to <path>.1, then truncate.
func rotate(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// gatedServer serves an API with logs from dir; while closed it answers 503, as a server
// that is stopping does.
type gatedServer struct {
	*httptest.Server
	closed atomic.Bool
}

func newGatedServer(t *testing.T, dir string) *gatedServer {
	t.Helper()
	svc := apitest.NewService()
	h := httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(), Deployer: svc, Operator: svc, Status: svc, State: svc, Logs: dirLogs{dir}})
	g := &gatedServer{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.closed.Load() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

func TestLogs_FollowResumesAfterTheConnectionDrops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	a, b := filepath.Join(dir, "abc-0.log"), filepath.Join(dir, "abc-1.log")
	appendFile(t, a, "a1\na2\n")
	appendFile(t, b, "b1\n")
	srv := newGatedServer(t, dir)
	c := apitest.NewClient(srv.URL)
	var n notices
	c.SetReconnect(n.reconnect(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &apitest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "web", "", 1, true, out) }()

	want := "abc-0 | a2\nabc-1 | b1\n"
	slipwaytest.Eventually(t, 10*time.Second, "the tail", func() bool { return out.String() == want })
	appendFile(t, a, "a3\n")
	want += "abc-0 | a3\n"
	slipwaytest.Eventually(t, 10*time.Second, "a followed line", func() bool { return out.String() == want })

	// The server goes away: lines are written, abc-0's log is rotated, a new instance starts
	// and a line is half written; then the server is back.
	srv.closed.Store(true)
	srv.CloseClientConnections()
	slipwaytest.Eventually(t, 10*time.Second, "the break to be seen", func() bool { return n.lost.Load() == 1 })
	appendFile(t, a, "a4\na5\n")
	rotate(t, a)
	appendFile(t, a, "a6\n")
	appendFile(t, b, "b2\nb3 half")
	appendFile(t, filepath.Join(dir, "abc-2.log"), "c1\n")
	srv.closed.Store(false)
	want += "abc-0 | a4\nabc-0 | a5\nabc-0 | a6\nabc-1 | b2\nabc-2 | c1\n"
	slipwaytest.Eventually(t, 10*time.Second, "the lines written during the break", func() bool { return out.String() == want })
	appendFile(t, b, " done\n")
	want += "abc-1 | b3 half done\n"
	slipwaytest.Eventually(t, 10*time.Second, "the completed line", func() bool { return out.String() == want })

	// A second break, this time with the server answering at once.
	srv.CloseClientConnections()
	appendFile(t, b, "b4\n")
	want += "abc-1 | b4\n"
	slipwaytest.Eventually(t, 10*time.Second, "the line after the second break", func() bool { return out.String() == want })
	slipwaytest.Eventually(t, 10*time.Second, "the second reconnect", func() bool { return n.back.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Logs ended with %v, want nil when ctx ends", err)
	}
	if out.String() != want {
		t.Errorf("followed logs:\n%s\nwant every line once, in order:\n%s", out.String(), want)
	}
	if n.lost.Load() != 2 {
		t.Errorf("told lost %d times, want 2", n.lost.Load())
	}
	srv.Close()
}

// logEvents reads a log stream's events: each event's id and lines.
func logEvents(t *testing.T, body io.Reader, n int) (ids []string, lines [][]string) {
	t.Helper()
	rd := bufio.NewReader(body)
	var id string
	var data []string
	for len(ids) < n {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read log stream: %v (after %d events)", err, len(ids))
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			ids, lines = append(ids, id), append(lines, data)
			id, data = "", nil
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		default:
			t.Fatalf("unexpected line %q in the log stream", line)
		}
	}
	return ids, lines
}

func getLogs(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.Header.Set("Authorization", "Bearer "+apitest.AdminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestLogs_EventStreamCarriesTheCursor(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "abc-0.log")
	appendFile(t, a, "one\ntwo\n")
	appendFile(t, filepath.Join(dir, "abc-1.log"), "uno\n")
	srv := newGatedServer(t, dir)
	logsURL := srv.URL + "/api/v1/apps/web/logs"
	sse := []string{"Accept", "text/event-stream"}

	resp := getLogs(t, logsURL+"?tail=1", sse...)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("answer %d %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	ids, lines := logEvents(t, resp.Body, 1)
	if ids[0] != "abc-0=8&abc-1=4" || strings.Join(lines[0], "|") != "abc-0 | two|abc-1 | uno" {
		t.Fatalf("first event id %q lines %q, want the tail and the cursor abc-0=8&abc-1=4", ids[0], lines[0])
	}

	appendFile(t, a, "three\n")
	for _, how := range [][]string{
		{"Last-Event-ID", ids[0]},
		{"X-Unused", ""}, // with the cursor parameter below
	} {
		u := logsURL + "?tail=100"
		if how[0] != "Last-Event-ID" {
			u += "&cursor=" + url.QueryEscape(ids[0])
		}
		resp := getLogs(t, u, append(sse, how...)...)
		got, lines := logEvents(t, resp.Body, 1)
		if got[0] != "abc-0=14&abc-1=4" || strings.Join(lines[0], "|") != "abc-0 | three" {
			t.Errorf("resumed by %s: id %q lines %q, want only the line after the cursor", how[0], got[0], lines[0])
		}
	}

	// "-" is the cursor of a stream that saw no file: every file from its start.
	resp = getLogs(t, logsURL, append(sse, "Last-Event-ID", "-")...)
	if _, lines := logEvents(t, resp.Body, 1); len(lines[0]) != 4 {
		t.Errorf("resumed from -: lines %q, want all 4", lines[0])
	}

	// Without text/event-stream the answer is the lines as text.
	resp = getLogs(t, logsURL+"?tail=1")
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || string(body) != "abc-0 | three\nabc-1 | uno\n" {
		t.Errorf("text answer %q %q", ct, body)
	}

	for _, bad := range []string{"abc-0=x", "abc-0=-1", "=5", "%zz"} {
		resp := getLogs(t, logsURL, append(sse, "Last-Event-ID", bad)...)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "log cursor") {
			t.Errorf("cursor %q: answer %d %s, want 400 naming the log cursor", bad, resp.StatusCode, body)
		}
	}
}

func TestServer_StreamsOfAStoppingServerAnswer503(t *testing.T) {
	dir := t.TempDir()
	appendFile(t, filepath.Join(dir, "abc-0.log"), "one\n")
	svc := apitest.NewService()
	srv := httptest.NewUnstartedServer(httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(), Deployer: svc, Operator: svc, Status: svc, State: svc, Logs: dirLogs{dir}}))
	stopped, stop := context.WithCancel(context.Background())
	stop()
	srv.Config.BaseContext = func(net.Listener) context.Context { return stopped }
	srv.Start()
	defer srv.Close()
	for _, path := range []string{"/api/v1/events/stream", "/api/v1/apps/web/logs?follow=true"} {
		resp := getLogs(t, srv.URL+path, "Accept", "text/event-stream")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "stopping") {
			t.Errorf("%s: answer %d %s, want 503 saying the server is stopping", path, resp.StatusCode, body)
		}
	}
	err := apitest.NewClient(srv.URL).Logs(context.Background(), "web", "", 0, true, io.Discard)
	if !httpapi.Transient(err) {
		t.Errorf("client error %v, want transient", err)
	}
}

func TestLogs_FollowOfAServerThatAnswersText(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "abc-0 | one\nabc-0 | two\n")
	}))
	defer srv.Close()
	c := apitest.NewClient(srv.URL)
	c.SetReconnect(httpapi.Reconnect{})
	var out strings.Builder
	if err := c.Logs(context.Background(), "web", "", -1, true, &out); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if out.String() != "abc-0 | one\nabc-0 | two\n" {
		t.Errorf("followed %q, want the text as it came", out.String())
	}
}
