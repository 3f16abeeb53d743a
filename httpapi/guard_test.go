package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

// applyBody is an apply of one app whose job analysis would run a command on the server.
const applyBody = `{"set":{"apps":[{"name":"web","replicas":1,"run":{"command":"x"},"strategy":{}}],
"templates":[{"name":"pwn","metrics":[{"name":"m","provider":{"job":{"command":"sh","args":["-c","touch /tmp/pwned"]}}}]}]}}`

// TestGuard_RefusesTheBrowserAttack replays, one check at a time, a request a web page could
// send to the API on loopback: a text/plain POST from https://evil.example to a rebound
// Host. Each is refused before anything is applied.
func TestGuard_RefusesTheBrowserAttack(t *testing.T) {
	env := newTestEnv(t)
	auth := "Bearer " + apitest.AdminSecret
	tests := []struct {
		name   string
		hdr    []string
		status int
		code   string
	}{
		{"the attack as reproduced, without a token", []string{"Content-Type", "text/plain", "Origin", "https://evil.example", "Host", "evil.example:7070", "Authorization", ""}, 403, slipway.EFORBIDDEN},
		{"no token", []string{"Authorization", ""}, 401, slipway.EUNAUTHORIZED},
		{"unknown token", []string{"Authorization", "Bearer slw_guess"}, 401, slipway.EUNAUTHORIZED},
		{"not a bearer token", []string{"Authorization", "Basic YWRtaW46YWRtaW4="}, 401, slipway.EUNAUTHORIZED},
		{"text/plain with a token", []string{"Authorization", auth, "Content-Type", "text/plain"}, 415, slipway.EINVALID},
		{"form with a token", []string{"Authorization", auth, "Content-Type", "application/x-www-form-urlencoded"}, 415, slipway.EINVALID},
		{"no content type", []string{"Authorization", auth, "Content-Type", ""}, 415, slipway.EINVALID},
		{"another origin", []string{"Authorization", auth, "Origin", "https://evil.example"}, 403, slipway.EFORBIDDEN},
		{"a null origin", []string{"Authorization", auth, "Origin", "null"}, 403, slipway.EFORBIDDEN},
		{"cross-site fetch without origin", []string{"Authorization", auth, "Sec-Fetch-Site", "cross-site"}, 403, slipway.EFORBIDDEN},
		{"rebound host", []string{"Authorization", auth, "Host", "evil.example:7070"}, 403, slipway.EFORBIDDEN},
		{"rebound host, no port", []string{"Authorization", auth, "Host", "evil.example"}, 403, slipway.EFORBIDDEN},
		{"a name under localhost", []string{"Authorization", auth, "Host", "localhost.evil.example"}, 403, slipway.EFORBIDDEN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(env.Service.Plans())
			resp, body := env.call(t, "POST", "/api/v1/apply", applyBody, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil || eb.Error.Code != tc.code {
				t.Errorf("body %s, want code %s", body, tc.code)
			}
			if n := len(env.Service.Plans()); n != before {
				t.Errorf("the engine was asked to apply (%d calls, was %d)", n, before)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
		})
	}
}

func TestGuard_AllowsTheServersOwnCallers(t *testing.T) {
	env := newTestEnv(t)
	u := strings.TrimPrefix(env.URL, "http://")
	_, port, _ := strings.Cut(u, ":")
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"the CLI", nil},
		{"localhost", []string{"Host", "localhost:" + port}},
		{"IPv6 loopback", []string{"Host", "[::1]:" + port}},
		{"the page of its own origin", []string{"Origin", env.URL, "Sec-Fetch-Site", "same-origin"}},
		{"charset parameter", []string{"Content-Type", "application/json; charset=utf-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.call(t, "POST", "/api/v1/plan", `{"set":{}}`, tc.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
}

func TestGuard_AllowedHostsAndOrigins(t *testing.T) {
	srv := apitest.NewServer(t, httpapi.Config{AllowedHosts: []string{"Slipway.Example.COM."}, AllowedOrigins: []string{"https://dash.example.com/"}})
	env := &testEnv{srv}
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"an allowed host, any case", []string{"Host", "slipway.example.com:7070"}, 200},
		{"an allowed origin", []string{"Origin", "https://dash.example.com"}, 200},
		{"the allowed origin over http", []string{"Origin", "http://dash.example.com"}, 403},
		{"another host", []string{"Host", "example.com"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.call(t, "GET", "/api/v1/apps", "", tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
		})
	}
}

// TestGuard_Roles checks what each role and scope may do, route by route.
func TestGuard_Roles(t *testing.T) {
	srv := apitest.NewServer(t, httpapi.Config{Flags: &fakeFlags{}, FlagOperator: &fakeFlags{}})
	env := &testEnv{srv}
	appOnly := `{"set":{"apps":[{"name":"web-2","replicas":1,"run":{"command":"x"},"strategy":{}}]}}`
	other := `{"set":{"apps":[{"name":"api","replicas":1,"run":{"command":"x"},"strategy":{}}]}}`
	type call struct{ method, path, body string }
	var (
		read       = call{"GET", "/api/v1/apps", ""}
		plan       = call{"POST", "/api/v1/plan", applyBody}
		applyApp   = call{"POST", "/api/v1/apply", appOnly}
		applyOther = call{"POST", "/api/v1/apply", other}
		applyTmpl  = call{"POST", "/api/v1/apply", applyBody}
		pruneApp   = call{"POST", "/api/v1/apply", strings.Replace(appOnly, "}]}}", "}]},\"prune\":true}", 1)}
		promoteWeb = call{"POST", "/api/v1/apps/web/promote", ""}
		promoteAPI = call{"POST", "/api/v1/apps/api/promote", ""}
		disable    = call{"POST", "/api/v1/flags/dark-mode/disable", ""}
		tokens     = call{"GET", "/api/v1/tokens", ""}
		create     = call{"POST", "/api/v1/tokens", `{"name":"ci","role":"viewer"}`}
	)
	forbidden := func(c ...call) map[call]bool {
		m := map[call]bool{}
		for _, x := range c {
			m[x] = true
		}
		return m
	}
	all := []call{read, plan, applyApp, applyOther, applyTmpl, pruneApp, promoteWeb, promoteAPI, disable, tokens, create}
	for _, tc := range []struct {
		secret string
		denied map[call]bool
	}{
		{apitest.ViewerSecret, forbidden(applyApp, applyOther, applyTmpl, pruneApp, promoteWeb, promoteAPI, disable, tokens, create)},
		{apitest.ScopedSecret, forbidden(applyOther, applyTmpl, pruneApp, promoteAPI, disable, tokens, create)},
		{apitest.DeployerSecret, forbidden(tokens, create)},
		{apitest.AdminSecret, forbidden()},
	} {
		tok, _ := srv.Tokens.Authenticate(t.Context(), tc.secret)
		for _, c := range all {
			resp, body := env.call(t, c.method, c.path, c.body, "Authorization", "Bearer "+tc.secret)
			denied := resp.StatusCode == http.StatusForbidden
			if denied != tc.denied[c] {
				t.Errorf("%s %s %s by %s: status %d (%s), want forbidden %v", c.method, c.path, c.body[:min(len(c.body), 40)], tok.Name, resp.StatusCode, strings.TrimSpace(string(body)), tc.denied[c])
			}
			if c == create && !denied {
				// Once is enough to prove it is allowed; a second would conflict.
				srv.Tokens.Forget("ci")
			}
		}
	}
}

func TestGuard_HealthzNeedsNoToken(t *testing.T) {
	env := newTestEnv(t)
	resp, body := env.call(t, "GET", "/healthz", "", "Authorization", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
	}
	resp, _ = env.call(t, "GET", "/api/v1/healthz", "", "Authorization", "")
	if resp.StatusCode != 401 {
		t.Fatalf("GET /api/v1/healthz without a token: %d, want 401", resp.StatusCode)
	}
	resp, _ = env.call(t, "GET", "/api/v1/nope", "", "Authorization", "")
	if resp.StatusCode != 401 {
		t.Fatalf("an unknown route without a token: %d, want 401 (routes are not shown to strangers)", resp.StatusCode)
	}
}

func TestGuard_ReasonIsBounded(t *testing.T) {
	env := newTestEnv(t)
	long := strings.Repeat("x", slipway.MaxReasonLen+1)
	for _, path := range []string{"/api/v1/apps/web/abort", "/api/v1/apply"} {
		body := `{"reason":"` + long + `"}`
		if path == "/api/v1/apply" {
			body = `{"set":{},"reason":"` + long + `"}`
		}
		resp, b := env.call(t, "POST", path, body)
		if resp.StatusCode != 400 {
			t.Errorf("POST %s with a %d-byte reason: %d %s, want 400", path, len(long), resp.StatusCode, b)
		}
	}
}

func TestHealthz_SaysWhetherTheStoreCanWrite(t *testing.T) {
	var healthErr error
	srv := apitest.NewServer(t, httpapi.Config{Health: func(context.Context) error { return healthErr }})
	env := &testEnv{srv}
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{nil, 200, `{"ok":true}`},
		{slipway.Errorf(slipway.EUNAVAILABLE, "the store cannot write: the disk is full"), 503, `{"ok":false,"error":"the store cannot write: the disk is full"}`},
		{errors.New("sqlite: /secret/path: something internal"), 503, `{"ok":false,"error":"internal error"}`},
	} {
		healthErr = tc.err
		resp, body := env.call(t, "GET", "/healthz", "", "Authorization", "")
		if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != tc.body {
			t.Errorf("health %v: %d %s, want %d %s", tc.err, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

func TestGuard_MetricsNeedAToken(t *testing.T) {
	srv := apitest.NewServer(t, httpapi.Config{Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("slipway_up 1\n"))
	})})
	env := &testEnv{srv}
	if resp, _ := env.call(t, "GET", "/metrics", "", "Authorization", ""); resp.StatusCode != 401 {
		t.Errorf("GET /metrics without a token: %d, want 401", resp.StatusCode)
	}
	if resp, body := env.call(t, "GET", "/metrics", "", "Authorization", "Bearer "+apitest.ViewerSecret); resp.StatusCode != 200 || string(body) != "slipway_up 1\n" {
		t.Errorf("GET /metrics as a viewer: %d %q", resp.StatusCode, body)
	}
}

// TestGuard_RevokedTokenEndsItsStream: a stream opened with a token ends once the token is
// revoked, instead of serving events to it for as long as it stays connected.
func TestGuard_RevokedTokenEndsItsStream(t *testing.T) {
	srv := apitest.NewServer(t, httpapi.Config{Heartbeat: 10 * time.Millisecond, Reauth: 10 * time.Millisecond})
	created, err := srv.Tokens.CreateToken(t.Context(), slipway.NewToken{Name: "watcher", Role: slipway.RoleViewer}, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+created.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	if _, err := srv.Tokens.RevokeToken(t.Context(), "watcher", "admin", "left"); err != nil {
		t.Fatal(err)
	}
	// The stream must end by itself: reading to EOF returns before ctx's deadline.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || ctx.Err() != nil {
		t.Fatalf("stream after revocation: %v (ctx %v); want it ended by the server", err, ctx.Err())
	}
}
