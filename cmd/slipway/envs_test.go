package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
)

func TestRouteEnvironments(t *testing.T) {
	echo := func(who string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, who+" "+slipway.EnvironmentFrom(r.Context())+" "+r.URL.Path)
		})
	}
	h := routeEnvironments(echo("root"), func(name string) (http.Handler, error) {
		switch name {
		case "staging":
			return echo("staging-handler"), nil
		case "broken":
			return nil, slipway.Errorf(slipway.EUNAVAILABLE, "environment broken could not start")
		}
		return nil, slipway.Errorf(slipway.ENOTFOUND, "environment %s does not exist", name)
	})
	for _, tc := range []struct {
		path string
		code int
		body string // the handler's answer, or the error code
	}{
		{"/api/v1/apps", 200, "root default /api/v1/apps"},
		{"/env/staging/api/v1/apps/web", 200, "staging-handler staging /api/v1/apps/web"},
		{"/env/staging/ofrep/v1/evaluate/flags", 200, "staging-handler staging /ofrep/v1/evaluate/flags"},
		{"/env/production/api/v1/apps", 404, slipway.ENOTFOUND},
		{"/env/broken/api/v1/apps", 503, slipway.EUNAVAILABLE},
		{"/env/Bad_Name/api/v1/apps", 400, slipway.EINVALID},
		{"/env/../api/v1/apps", 400, slipway.EINVALID},
		{"/env//api/v1/apps", 400, slipway.EINVALID},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://x"+tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s: status %d, want %d (%s)", tc.path, rec.Code, tc.code, rec.Body)
			continue
		}
		if tc.code == 200 {
			if rec.Body.String() != tc.body {
				t.Errorf("%s: %q, want %q", tc.path, rec.Body, tc.body)
			}
			continue
		}
		var eb httpapi.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Code != tc.body {
			t.Errorf("%s: body %s, want a %s error", tc.path, rec.Body, tc.body)
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
