package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/sqlite"
)

// TestRouteEnvironments: each /env/NAME/ reaches NAME's handler with the prefix removed;
// an environment the server does not serve, or one that could not start, is answered with
// a slipway error, and only to a caller with a credential: without one, it gets what an
// environment's own API or OFREP would answer (401), so that no one learns which
// environments exist without a token. The same holds for an environment's /healthz, the
// one path its API answers without a token, and for a Host a DNS rebinding attack sends.
func TestRouteEnvironments(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tokens := auth.New(auth.Config{Store: st})
	viewer, err := tokens.CreateToken(context.Background(), slipway.NewToken{Name: "v", Role: slipway.RoleViewer}, "test")
	if err != nil {
		t.Fatal(err)
	}
	echo := func(who string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, who+" "+slipway.EnvironmentFrom(r.Context())+" "+r.URL.Path)
		})
	}
	gate := envGate{hosts: nil, tokens: tokens, ofrepKeys: []string{"ofrep-key"}}
	h := routeEnvironments(echo("root"), gate, func(name string) (http.Handler, error) {
		switch name {
		case "staging":
			return echo("staging-handler"), nil
		case "broken":
			return nil, slipway.Errorf(slipway.EUNAVAILABLE, "environment broken could not start")
		}
		return nil, slipway.Errorf(slipway.ENOTFOUND, "environment %s does not exist", name)
	})
	bearer := "Bearer " + viewer.Secret
	for _, tc := range []struct {
		path   string
		header [2]string // a header to send
		host   string
		code   int
		body   string // the handler's answer, or the error code
	}{
		{"/api/v1/apps", [2]string{}, "", 200, "root default /api/v1/apps"},
		{"/env/staging/api/v1/apps/web", [2]string{}, "", 200, "staging-handler staging /api/v1/apps/web"},
		{"/env/staging/ofrep/v1/evaluate/flags", [2]string{}, "", 200, "staging-handler staging /ofrep/v1/evaluate/flags"},
		{"/env/Bad_Name/api/v1/apps", [2]string{}, "", 400, slipway.EINVALID},
		{"/env/../api/v1/apps", [2]string{}, "", 400, slipway.EINVALID},
		{"/env//api/v1/apps", [2]string{}, "", 400, slipway.EINVALID},
		// Without a credential, an unknown or broken environment is answered as a served one.
		{"/env/production/api/v1/apps", [2]string{}, "", 401, slipway.EUNAUTHORIZED},
		{"/env/production/metrics", [2]string{}, "", 401, slipway.EUNAUTHORIZED},
		{"/env/production/api/v1/apps", [2]string{"Authorization", "Bearer slw_guess"}, "", 401, slipway.EUNAUTHORIZED},
		{"/env/broken/api/v1/apps", [2]string{}, "", 401, slipway.EUNAUTHORIZED},
		{"/env/staging/healthz", [2]string{}, "", 401, slipway.EUNAUTHORIZED},
		{"/env/production/healthz", [2]string{}, "", 401, slipway.EUNAUTHORIZED},
		{"/env/production/ofrep/v1/evaluate/flags", [2]string{}, "", 401, ""},
		{"/env/production/ofrep/v1/evaluate/flags", [2]string{"X-API-Key", "wrong"}, "", 401, ""},
		{"/env/production/api/v1/apps", [2]string{"Authorization", bearer}, "evil.example", 403, slipway.EFORBIDDEN},
		// With one, the answer says what is wrong.
		{"/env/production/api/v1/apps", [2]string{"Authorization", bearer}, "", 404, slipway.ENOTFOUND},
		{"/env/broken/api/v1/apps", [2]string{"Authorization", bearer}, "", 503, slipway.EUNAVAILABLE},
		{"/env/staging/healthz", [2]string{"Authorization", bearer}, "", 200, "staging-handler staging /healthz"},
		{"/env/production/ofrep/v1/evaluate/flags", [2]string{"X-API-Key", "ofrep-key"}, "", 404, slipway.ENOTFOUND},
		{"/env/production/ofrep/v1/evaluate/flags", [2]string{"Authorization", "Bearer ofrep-key"}, "", 404, slipway.ENOTFOUND},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+tc.path, nil)
		if tc.header[0] != "" {
			req.Header.Set(tc.header[0], tc.header[1])
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		name := tc.path + " " + tc.header[0] + " " + tc.host
		if rec.Code != tc.code {
			t.Errorf("%s: status %d, want %d (%s)", name, rec.Code, tc.code, rec.Body)
			continue
		}
		if tc.code == 200 {
			if rec.Body.String() != tc.body {
				t.Errorf("%s: %q, want %q", name, rec.Body, tc.body)
			}
			continue
		}
		if tc.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
		if tc.body == "" {
			continue
		}
		var eb httpapi.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Code != tc.body {
			t.Errorf("%s: body %s, want a %s error", name, rec.Body, tc.body)
		}
	}
}

func TestServerFor(t *testing.T) {
	for _, tc := range []struct{ server, env, want string }{
		{"http://h:7070", "", "http://h:7070"},
		{"http://h:7070", "default", "http://h:7070"},
		{"http://h:7070/", "staging", "http://h:7070/env/staging"},
	} {
		if got := serverFor(tc.server, tc.env); got != tc.want {
			t.Errorf("serverFor(%q, %q) = %q, want %q", tc.server, tc.env, got, tc.want)
		}
	}
}
