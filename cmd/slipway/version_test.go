package main

import (
	"context"
	"strings"
	"testing"

	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

func TestCLI_WarnsOfAnotherServerVersion(t *testing.T) {
	for _, tc := range []struct {
		server string
		warn   bool
	}{
		{"v9.9.9+0123456789ab", true},
		{versionString(), false},
		{"", false},
	} {
		srv := apitest.NewServer(t, httpapi.Config{Version: tc.server})
		t.Setenv(envServer, srv.URL)
		t.Setenv(envToken, apitest.AdminSecret)
		r := runCLI(t, context.Background(), "get", "apps")
		if r.code != 0 {
			t.Fatalf("get apps: %s", r)
		}
		if got := strings.Contains(r.stderr, "warning: this CLI is "+versionString()+" and the server "+tc.server); got != tc.warn {
			t.Errorf("server %q: warned %v, want %v\n%s", tc.server, got, tc.warn, r)
		}
		r = runCLI(t, context.Background(), "version")
		if r.code != 0 || !strings.Contains(r.stdout, "client: ") || (tc.server != "" && !strings.Contains(r.stdout, "server: "+tc.server)) {
			t.Errorf("version: %s", r)
		}
	}
}
