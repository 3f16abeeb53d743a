package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testEnv is an API server over an apitest.Service.
type testEnv struct{ *apitest.Server }

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	return &testEnv{apitest.NewServer(t, httpapi.Config{})}
}

func (e *testEnv) call(t testing.TB, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	// A request that may change something is JSON unless the test says otherwise.
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func indent(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, b)
	}
	return append(out.Bytes(), '\n')
}

func TestServer_Routes(t *testing.T) {
	env := newTestEnv(t)
	const set = `{"set":{"apps":[{"name":"api","replicas":2,"run":{"command":"./api"},"strategy":{"rolling":{}}}]},"prune":true}`
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"healthz", "GET", "/healthz", "", 200},
		{"healthz_v1", "GET", "/api/v1/healthz", "", 200},
		{"plan", "POST", "/api/v1/plan", set, 200},
		{"apply", "POST", "/api/v1/apply", set, 200},
		{"apps", "GET", "/api/v1/apps", "", 200},
		{"app", "GET", "/api/v1/apps/web", "", 200},
		{"app_missing", "GET", "/api/v1/apps/nope", "", 404},
		{"status", "GET", "/api/v1/apps/web/status", "", 200},
		{"status_missing", "GET", "/api/v1/apps/nope/status", "", 404},
		{"revisions", "GET", "/api/v1/apps/web/revisions", "", 200},
		{"rollouts", "GET", "/api/v1/apps/web/rollouts?limit=1", "", 200},
		{"rollouts_bad_limit", "GET", "/api/v1/apps/web/rollouts?limit=-1", "", 400},
		{"rollout", "GET", "/api/v1/rollouts/web-2", "", 200},
		{"rollout_missing", "GET", "/api/v1/rollouts/zz", "", 404},
		{"analysisruns", "GET", "/api/v1/rollouts/web-2/analysisruns", "", 200},
		{"analysisruns_missing", "GET", "/api/v1/rollouts/zz/analysisruns", "", 404},
		{"analysisrun", "GET", "/api/v1/analysisruns/web-2-step-0", "", 200},
		{"analysisruns_of_rollout", "GET", "/api/v1/analysisruns?rollout=web-2", "", 200},
		{"analysisruns_of_rollout_missing", "GET", "/api/v1/analysisruns?rollout=zz", "", 404},
		{"analysisruns_of_flag", "GET", "/api/v1/analysisruns?flag=new-checkout", "", 200},
		{"analysisruns_unfiltered", "GET", "/api/v1/analysisruns", "", 400},
		{"analysisruns_both", "GET", "/api/v1/analysisruns?flag=a&rollout=web-2", "", 400},
		{"promote", "POST", "/api/v1/apps/web/promote", `{"full":true}`, 200},
		{"abort", "POST", "/api/v1/apps/web/abort", `{"reason":"bad smell"}`, 200},
		{"pause", "POST", "/api/v1/apps/web/pause", "", 200},
		{"resume", "POST", "/api/v1/apps/web/resume", "", 200},
		{"retry", "POST", "/api/v1/apps/web/retry", "", 200},
		{"rollback", "POST", "/api/v1/apps/web/rollback", `{"to":"1","withSteps":true}`, 200},
		{"operate_missing", "POST", "/api/v1/apps/nope/pause", "", 404},
		{"operate_unknown", "POST", "/api/v1/apps/web/explode", "", 404},
		{"templates", "GET", "/api/v1/templates", "", 200},
		{"template", "GET", "/api/v1/templates/success-rate", "", 200},
		{"template_missing", "GET", "/api/v1/templates/zz", "", 404},
		{"events", "GET", "/api/v1/events?app=web&after=1&limit=1", "", 200},
		{"events_bad_after", "GET", "/api/v1/events?after=x", "", 400},
		{"unknown_route", "GET", "/api/v2/things", "", 404},
		{"wrong_method", "DELETE", "/api/v1/apps", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := env.call(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.status >= 400 {
				var eb httpapi.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil || eb.Error.Code == "" || eb.Error.Message == "" {
					t.Errorf("error answer not in the error shape: %s", body)
				}
			}
			golden(t, "routes/"+tt.name+".json", indent(t, body))
		})
	}
}

func TestServer_PassesRequestToEngine(t *testing.T) {
	env := newTestEnv(t)
	t.Run("actor is the token's name", func(t *testing.T) {
		env.call(t, "POST", "/api/v1/plan", `{"set":{}}`)
		plans := env.Service.Plans()
		if got := plans[len(plans)-1].Options; got.Actor != "admin" || got.Prune {
			t.Errorf("options %+v", got)
		}
	})
	t.Run("a client cannot choose its actor; prune and reason pass", func(t *testing.T) {
		env.call(t, "POST", "/api/v1/apply", `{"set":{"apps":[{"name":"a","replicas":1,"run":{"command":"x"},"strategy":{}}]},"prune":true,"reason":"ticket 7"}`,
			"X-Slipway-Actor", "alice", "Authorization", "Bearer "+apitest.DeployerSecret)
		plans := env.Service.Plans()
		got := plans[len(plans)-1]
		if got.Options.Actor != "deployer" || !got.Options.Prune || got.Options.Reason != "ticket 7" {
			t.Errorf("options %+v", got.Options)
		}
		if s := got.Set; len(s.Apps) != 1 || s.Apps[0].Name != "a" {
			t.Errorf("set %+v", s)
		}
	})
	t.Run("operation fields", func(t *testing.T) {
		env.call(t, "POST", "/api/v1/apps/web/rollback", `{"to":"3","withSteps":true,"reason":"r"}`, "Authorization", "Bearer "+apitest.ScopedSecret)
		want := slipway.Operation{Kind: slipway.OpRollback, App: "web", Actor: "scoped-deployer", Reason: "r", To: "3", WithSteps: true}
		ops := env.Service.Operations()
		if got := ops[len(ops)-1]; got != want {
			t.Errorf("operation %+v, want %+v", got, want)
		}
	})
}

func TestServer_ErrorMapping(t *testing.T) {
	tests := []struct {
		err     error
		status  int
		code    string
		message string
	}{
		{slipway.Errorf(slipway.EINVALID, "bad set"), 400, "invalid", "bad set"},
		{fmt.Errorf("plan: %w", &slipway.Error{Code: slipway.EINVALID, Message: "2 errors", Details: []string{"a.yaml:3:5: apps[0].replicas: must be >= 0"}}), 400, "invalid", "2 errors"},
		{slipway.Errorf(slipway.ENOTFOUND, "gone"), 404, "not_found", "gone"},
		{slipway.Errorf(slipway.ECONFLICT, "state moved"), 409, "conflict", "state moved"},
		{slipway.Errorf(slipway.EUNAUTHORIZED, "who are you"), 401, "unauthorized", "who are you"},
		{slipway.Errorf(slipway.EFORBIDDEN, "no"), 403, "forbidden", "no"},
		{slipway.Errorf(slipway.EINTERNAL, "disk /var/secret full"), 500, "internal", "internal error"},
		{errors.New("database is locked at /var/secret"), 500, "internal", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+tt.message, func(t *testing.T) {
			env := newTestEnv(t)
			env.Service.SetError("Plan", tt.err)
			resp, body := env.call(t, "POST", "/api/v1/plan", `{"set":{}}`)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatal(err)
			}
			if eb.Error.Code != tt.code || eb.Error.Message != tt.message {
				t.Errorf("error %+v, want code %q message %q", eb.Error, tt.code, tt.message)
			}
			var want *slipway.Error
			if errors.As(tt.err, &want) && tt.status != 500 && len(eb.Error.Details) != len(want.Details) {
				t.Errorf("details %v, want %v", eb.Error.Details, want.Details)
			}
			if tt.status == 500 {
				if strings.Contains(string(body), "secret") {
					t.Errorf("internal error leaked: %s", body)
				}
				if !strings.Contains(env.Logs.String(), "secret") {
					t.Errorf("internal error not logged; logs:\n%s", env.Logs.String())
				}
			}
		})
	}
}

func TestServer_RejectsBadBodies(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"malformed", "/api/v1/plan", "{\n  \"set\": {,\n}", 400, "malformed JSON at line 2, column 11"},
		{"truncated", "/api/v1/plan", `{"set":{"apps":[`, 400, "ends before the JSON value"},
		{"wrong type", "/api/v1/plan", `{"set":{"apps":[{"name":"a","replicas":"three"}]}}`, 400, "field set.apps.replicas: got JSON string, want int"},
		{"unknown field", "/api/v1/apply", `{"set":{},"prun":true}`, 400, `unknown field "prun"`},
		{"trailing data", "/api/v1/plan", `{"set":{}} {}`, 400, "unexpected data after the JSON object"},
		{"empty", "/api/v1/plan", "", 400, "request body is empty"},
		{"not an object", "/api/v1/apps/web/pause", `[1]`, 400, "got JSON array"},
		{"too large", "/api/v1/plan", `{"set":{},"x":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, 413, "larger than 8388608 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := env.call(t, "POST", tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatal(err)
			}
			if eb.Error.Code != slipway.EINVALID || !strings.Contains(eb.Error.Message, tt.want) {
				t.Errorf("error %+v, want code invalid and message containing %q", eb.Error, tt.want)
			}
		})
	}
	if plans, ops := env.Service.Plans(), env.Service.Operations(); len(plans) != 0 || len(ops) != 0 {
		t.Errorf("engine was called with a bad body: %d plans, %d operations", len(plans), len(ops))
	}
}

func TestServer_MethodNotAllowedNamesAllowedMethods(t *testing.T) {
	env := newTestEnv(t)
	resp, body := env.call(t, "GET", "/api/v1/plan", "")
	if resp.StatusCode != 405 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if allow := resp.Header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q", allow)
	}
	if !strings.Contains(string(body), `"code":"method_not_allowed"`) {
		t.Errorf("body %s", body)
	}
}
