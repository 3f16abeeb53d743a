package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
	"slipway.dev/slipway/logfile"

	"slipway.dev/slipway/slipwaytest"
)

// forged is text a server could send to take over the terminal: clear the screen, then
// start a line of its own.
const forged = "ok\x1b[2J\nFORGED line"

// checkEscaped fails unless out holds no ESC, no right-to-left override and no line that
// begins with FORGED, and shows want (the server's text, escaped).
func checkEscaped(t testing.TB, what, out, want string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\u202e") {
		t.Errorf("%s: output holds ESC or U+202E:\n%q", what, out)
	}
	for line := range strings.Lines(out) {
		if strings.HasPrefix(strings.TrimSpace(line), "FORGED") {
			t.Errorf("%s: a line forged by the server: %q\nin:\n%s", what, line, out)
		}
	}
	if !strings.Contains(out, want) {
		t.Errorf("%s: output does not show %q:\n%s", what, want, out)
	}
}

// TestCLI_EscapesServerText is the reproduction: an event (and rollout) reason that would
// clear the screen and print a line of its own.
func TestCLI_EscapesServerText(t *testing.T) {
	const want = `ok\x1b[2J\nFORGED line`
	tests := []struct {
		name  string
		args  []string
		code  int
		setup func(*apitest.Service)
	}{
		{name: "events", args: []string{"events", "web"}},
		{name: "status", args: []string{"status", "web"}},
		{name: "status --wait", args: []string{"status", "web", "--wait"}, code: exitAborted},
		{name: "history", args: []string{"history", "web"}},
		{name: "server error", args: []string{"status", "web"}, code: exitError, setup: func(s *apitest.Service) {
			s.SetError("Status", &slipway.Error{Code: slipway.EINVALID, Message: forged, Details: []string{"detail " + forged}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newCLIEnv(t)
			env.Service.SetPhase(slipway.PhaseAborted, forged, slipway.EventRolloutAborted)
			if tt.setup != nil {
				tt.setup(env.Service)
			}
			runEscaped(t, tt.args, tt.code, want)
		})
	}
	t.Run("error details stay one line each", func(t *testing.T) {
		env := newCLIEnv(t)
		env.Service.SetError("Status", &slipway.Error{Code: slipway.EINVALID, Message: forged, Details: []string{"a", "b " + forged}})
		r := runCLI(t, context.Background(), "status", "web")
		wantErr := "error: " + want + "\n  a\n  b " + want + "\n"
		if r.stderr != wantErr {
			t.Errorf("stderr %q, want %q", r.stderr, wantErr)
		}
	})
}

// poison is appended by hostileProxy to every string the server sends.
const poison = "\x1b[2J\nFORGED\u202e"

// hostileProxy serves what the API at backend answers, with poison appended to every string
// of its JSON answers, and to the names of a flag's variants. Empty strings, times and
// durations are kept (the last two would no longer decode), and so is a plan change's
// action, so that the CLI takes the same branches as without poison. It passes requests on with poison taken out of their path and query,
// so that a name the CLI read from an answer still finds what it names.
func hostileProxy(t testing.TB, backend string) string {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{FlushInterval: -1}
	rp.Rewrite = func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		r := pr.Out
		r.URL.Path, r.URL.RawPath = strings.ReplaceAll(r.URL.Path, poison, ""), ""
		q := r.URL.Query()
		for _, vs := range q {
			for i := range vs {
				vs[i] = strings.ReplaceAll(vs[i], poison, "")
			}
		}
		r.URL.RawQuery = q.Encode()
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if b, err = json.Marshal(poisonJSON(v)); err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

func poisonJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "action" {
				continue
			}
			v[k] = poisonJSON(x)
			if m, ok := x.(map[string]any); ok && k == "variants" {
				named := map[string]any{}
				for name, val := range m {
					named[name+poison] = val
				}
				v[k] = named
			}
		}
	case []any:
		for i, x := range v {
			v[i] = poisonJSON(x)
		}
	case string:
		if v == "" {
			return v
		}
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return v
		}
		if _, err := slipway.ParseDuration(v); err == nil {
			return v
		}
		return v + poison
	}
	return v
}

// rampFake answers one ramp, mid-analysis, for every flag.
type rampFake struct{}

func (rampFake) ramp(key string) slipway.Ramp {
	return slipway.Ramp{
		Flag: key, Set: "shop", Phase: slipway.PhasePaused, Pause: slipway.PauseInconclusive, Step: 0, Weight: 5000,
		Spec:   slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{{Weight: 50, Pause: slipway.Duration(time.Hour)}, {Weight: 100}}},
		Run:    &slipway.AnalysisRun{ID: "ramp-1", Phase: slipway.VerdictInconclusive, Message: "error rate 0.5 of 1 measurement"},
		Reason: "analysis inconclusive",
	}
}

func (f rampFake) Ramps(context.Context) ([]slipway.Ramp, error) {
	return []slipway.Ramp{f.ramp("new-checkout")}, nil
}

func (f rampFake) Ramp(_ context.Context, key string) (slipway.Ramp, error) { return f.ramp(key), nil }

func (f rampFake) OperateRamp(_ context.Context, op slipway.RampOperation) (slipway.Ramp, error) {
	return f.ramp(op.Flag), nil
}

// TestCLI_EscapesEveryServerString runs every command that prints text against a server
// whose every string would clear the screen, start a line of its own and reverse the text
// after it: no command may let one through.
func TestCLI_EscapesEveryServerString(t *testing.T) {
	const want = `\x1b[2J\nFORGED\u202e`
	tests := []struct {
		name  string
		args  []string
		code  int
		setup func(*apitest.Service)
	}{
		{name: "status", args: []string{"status", "web"}},
		{name: "status with drift and analysis", args: []string{"status", "web"}, setup: func(s *apitest.Service) {
			st, err := s.Status(context.Background(), "web")
			if err != nil {
				t.Fatal(err)
			}
			st.Stable.Version = "" // a revision without a version
			st.Split.Routes = []slipway.Route{{Name: "beta", Revision: "4193928e8b74"}}
			st.Drift = []slipway.Drift{{Kind: slipway.DriftMissing, Revision: "4193928e8b74", Desired: 2, Actual: 1, Message: "1 instance is starting"}}
			st.Analysis = []slipway.AnalysisBrief{{ID: "web-2-step-1", Kind: slipway.AnalysisStep, Phase: slipway.VerdictRunning, Message: "2 of 5 measurements"}}
			s.SetStatus(st)
		}},
		{name: "status --wait progress", args: []string{"status", "web", "--wait", "--timeout", "100ms"}, code: exitError},
		{name: "status of an unknown app", args: []string{"status", "nope"}, code: exitError},
		{name: "get apps", args: []string{"get", "apps"}},
		{name: "get templates", args: []string{"get", "templates"}},
		{name: "history", args: []string{"history", "web"}},
		{name: "events", args: []string{"events"}, setup: func(s *apitest.Service) {
			s.SetPhase(slipway.PhaseAborted, "canary failed", slipway.EventRolloutAborted) // an event of a rollout
		}},
		{name: "promote", args: []string{"promote", "web"}},
		{name: "plan", args: []string{"plan", "-f", "testdata/good.yaml"}, code: exitChanges,
			setup: func(s *apitest.Service) { s.SetPlan(allChanges) }},
		{name: "plan with an unknown action", args: []string{"plan", "-f", "testdata/good.yaml"}, code: exitChanges,
			setup: func(s *apitest.Service) {
				s.SetPlan(slipway.Plan{Changes: []slipway.PlanChange{{Kind: slipway.KindApp, Name: "web", Action: "rename" + poison}}})
			}},
		{name: "plan rejected", args: []string{"plan", "-f", "testdata/good.yaml"}, code: exitError, setup: func(s *apitest.Service) {
			s.SetError("Plan", &slipway.Error{Code: slipway.EINVALID, Message: "1 error in set", Details: []string{"apps[0]: bad"}})
		}},
		{name: "apply", args: []string{"apply", "-f", "testdata/good.yaml"},
			setup: func(s *apitest.Service) { s.SetPlan(allChanges) }},
		{name: "apply --wait progress", args: []string{"apply", "--wait", "--timeout", "100ms", "-f", "testdata/good.yaml"}, code: exitError,
			setup: func(s *apitest.Service) { s.SetPlan(allChanges) }},
		{name: "flags ramp", args: []string{"flags", "ramp", "new-checkout"}},
		{name: "flags ramp pause", args: []string{"flags", "ramp", "new-checkout", "pause"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := apitest.NewServer(t, httpapi.Config{Ramps: rampFake{}})
			if tt.setup != nil {
				tt.setup(srv.Service)
			}
			t.Setenv(envServer, hostileProxy(t, srv.URL))
			t.Setenv(envToken, apitest.AdminSecret)
			runEscaped(t, tt.args, tt.code, want)
		})
	}

	t.Run("status --watch", func(t *testing.T) {
		srv := apitest.NewServer(t, httpapi.Config{})
		t.Setenv(envToken, apitest.AdminSecret)
		t.Setenv(envServer, hostileProxy(t, srv.URL))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errb apitest.Buffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"status", "web", "--watch"}, strings.NewReader(""), &out, &errb) }()
		slipwaytest.Eventually(t, 5*time.Second, "the first draw", func() bool { return strings.Contains(out.String(), "Live:") })
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("exit %d; stderr %s", code, errb.String())
		}
		checkEscaped(t, "status --watch", out.String()+errb.String(), "--- web"+want)
	})

	// Against the real engine and store: the flags, and templates with arguments.
	t.Run("engine", func(t *testing.T) {
		env := newFlagCLIEnv(t)
		ctx := context.Background()
		if r := runCLI(t, ctx, "apply", "-f", "../../examples/flags.yaml", "-f", "../../examples/canary.yaml"); r.code != 0 {
			t.Fatalf("apply: %s", r)
		}
		env.stats.Record("new-checkout", "on")
		if err := env.eng.FlagManager().FlushFlagStats(ctx); err != nil {
			t.Fatal(err)
		}
		env.clock.Advance(time.Hour)
		t.Setenv(envServer, hostileProxy(t, os.Getenv(envServer)))
		for _, args := range [][]string{
			{"apply", "-f", "../../examples/flags.yaml", "-f", "../../examples/canary.yaml"},
			{"get", "templates"},
			{"get", "apps"},
			{"status", "checkout"},
			{"history", "checkout"},
			{"events"},
			{"flags", "list"},
			{"flags", "get", "new-checkout"},
			{"flags", "get", "banner-color"},
			{"flags", "eval", "new-checkout", "--context", `{"email": "ann@example.com"}`},
			{"flags", "eval", "banner-color"},
			{"flags", "eval", "nope"},
			{"flags", "disable", "banner-color", "--reason", "incident 42"},
			{"flags", "set", "banner-color", "--default", "red"},
			{"flags", "history", "banner-color"},
			{"flags", "rollback", "shop", "--to", "1"},
			{"flags", "stale", "--unevaluated-for", "30m", "--single-variant-for", "0"},
			{"flags", "set", "banner-color", "--default", "blue"},
		} {
			r := runCLI(t, ctx, args...)
			checkEscaped(t, strings.Join(args, " "), r.stdout+r.stderr, want)
		}
	})
}

// TestCLI_EscapesWhyAStreamWasLost: the line a stream prints when its connection breaks
// quotes the server's answer.
func TestCLI_EscapesWhyAStreamWasLost(t *testing.T) {
	srv := apitest.NewServer(t, httpapi.Config{})
	t.Setenv(envToken, apitest.AdminSecret)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	var refused atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") && refused.CompareAndSwap(false, true) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(httpapi.ErrorBody{Error: &slipway.Error{Code: slipway.EINTERNAL, Message: forged}})
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Setenv(envServer, front.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb apitest.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"events", "web", "--follow"}, strings.NewReader(""), &out, &errb) }()
	slipwaytest.Eventually(t, 5*time.Second, "the stream to reconnect", func() bool { return strings.Contains(errb.String(), "reconnected") })
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d; stderr %s", code, errb.String())
	}
	checkEscaped(t, "events --follow", errb.String(), `lost: ok\x1b[2J\nFORGED line`)
}

// fileLogs serves one log file for every app.
type fileLogs struct{ path string }

func (f fileLogs) LogInstances(context.Context, string, string) ([]string, error) {
	return []string{strings.TrimSuffix(filepath.Base(f.path), ".log")}, nil
}

func (f fileLogs) TailLog(_ context.Context, _, _ string, n int) ([][]byte, slipway.LogPosition, error) {
	lines, end, err := logfile.Tail(f.path, n)
	return lines, slipway.LogPosition(end), err
}

func (f fileLogs) ReadLog(_ context.Context, _, _ string, from slipway.LogPosition) ([][]byte, slipway.LogPosition, error) {
	lines, end, err := logfile.ReadFrom(f.path, int64(from))
	return lines, slipway.LogPosition(end), err
}

// TestCLI_LogsEscapesEachLine: an instance's output keeps its lines, and nothing else it
// wrote reaches the terminal as it is.
func TestCLI_LogsEscapesEachLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "4193928e8b74-1.log")
	if err := os.WriteFile(path, []byte("started\nok\x1b[2J\rFORGED line\tat main.go:1\n\u202eevil\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, httpapi.Config{Logs: fileLogs{path}})
	t.Setenv(envToken, apitest.AdminSecret)
	t.Setenv(envServer, srv.URL)
	const want = "4193928e8b74-1 | started\n" +
		"4193928e8b74-1 | ok\\x1b[2J\\rFORGED line\tat main.go:1\n" +
		"4193928e8b74-1 | \\u202eevil\n"

	r := runCLI(t, context.Background(), "logs", "web")
	if r.code != exitOK || r.stdout != want {
		t.Errorf("logs: got %q, want %q\n%s", r.stdout, want, r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb apitest.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"logs", "web", "-f"}, strings.NewReader(""), &out, &errb) }()
	slipwaytest.Eventually(t, 5*time.Second, "the log lines", func() bool { return strings.Contains(out.String(), "evil") })
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("logs -f: exit %d; stderr %s", code, errb.String())
	}
	if out.String() != want {
		t.Errorf("logs -f: got %q, want %q", out.String(), want)
	}
}

// TestCLI_JSONAndYAMLEscape: -o json and -o yaml write every character a terminal would act
// on as an escape of the format, and decode to the server's strings unchanged.
func TestCLI_JSONAndYAMLEscape(t *testing.T) {
	const reason = "ok\x1b[2J\r\nFORGED line\t\x00\x7f\u009b\u0085\u2028\u202e\u00ad\ufeff\U000e0041 café 👩\u200d💻"
	tests := []struct {
		args []string
		// reason finds the rollout's reason in the decoded output.
		reason func(t *testing.T, out string) string
	}{
		{[]string{"status", "web", "-o", "json"}, func(t *testing.T, out string) string {
			var st slipway.AppStatus
			decodeJSON(t, out, &st)
			return st.Rollout.Reason
		}},
		{[]string{"status", "web", "-o", "yaml"}, func(t *testing.T, out string) string {
			var st struct{ Rollout struct{ Reason string } }
			decodeYAML(t, out, &st)
			return st.Rollout.Reason
		}},
		{[]string{"events", "web", "--limit", "1", "-o", "json"}, func(t *testing.T, out string) string {
			var evs []slipway.Event
			decodeJSON(t, out, &evs)
			return evs[0].Reason
		}},
		{[]string{"events", "web", "--limit", "1", "-o", "yaml"}, func(t *testing.T, out string) string {
			var evs []struct{ Reason string }
			decodeYAML(t, out, &evs)
			return evs[0].Reason
		}},
		{[]string{"events", "web", "--limit", "1", "--follow", "-o", "json"}, func(t *testing.T, out string) string {
			var e slipway.Event
			decodeJSON(t, out, &e)
			return e.Reason
		}},
		{[]string{"events", "web", "--limit", "1", "--follow", "-o", "yaml"}, func(t *testing.T, out string) string {
			var e struct{ Reason string }
			decodeYAML(t, out, &e)
			return e.Reason
		}},
		{[]string{"status", "web", "--watch", "-o", "json"}, func(t *testing.T, out string) string {
			var st slipway.AppStatus
			decodeJSON(t, out, &st)
			return st.Rollout.Reason
		}},
		{[]string{"status", "web", "--watch", "-o", "yaml"}, func(t *testing.T, out string) string {
			var st struct{ Rollout struct{ Reason string } }
			decodeYAML(t, out, &st)
			return st.Rollout.Reason
		}},
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		t.Run(name, func(t *testing.T) {
			env := newCLIEnv(t)
			env.Service.SetPhase(slipway.PhaseAborted, reason, slipway.EventRolloutAborted)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errb apitest.Buffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, tt.args, strings.NewReader(""), &out, &errb) }()
			// --follow and --watch go on until interrupted: stop them once they have printed.
			slipwaytest.Eventually(t, 5*time.Second, "the output", func() bool { return strings.Contains(out.String(), "FORGED") || errb.String() != "" })
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
			}
			got := out.String()
			if !utf8.ValidString(got) {
				t.Errorf("output is not UTF-8: %q", got)
			}
			for _, r := range got {
				if r != '\n' && unsafeRune(r) {
					t.Errorf("output holds %U:\n%q", r, got)
				}
			}
			if r := tt.reason(t, got); r != reason {
				t.Errorf("decoded reason %q, want %q\n%s", r, reason, got)
			}
		})
	}
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, s)
	}
}

// decodeYAML decodes the first document of s (a stream's documents start with ---).
func decodeYAML(t *testing.T, s string, v any) {
	t.Helper()
	if err := yaml.NewDecoder(strings.NewReader(s)).Decode(v); err != nil {
		t.Fatalf("decode YAML: %v\n%s", err, s)
	}
}

// runEscaped runs the CLI with args, wants exit code, and checks that its output shows the
// forged text escaped as want.
func runEscaped(t *testing.T, args []string, code int, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := runCLI(t, ctx, args...)
	if r.code != code {
		t.Errorf("exit %d, want %d\n%s", r.code, code, r)
	}
	checkEscaped(t, strings.Join(args, " "), r.stdout+r.stderr, want)
}
