package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2E_Flags builds the binary and drives flag management against a server on the sim
// platform: apply a FlagSet beside an app (and a plain flagd file), evaluate, disable, read
// the history, roll back, and find the flags in force again after a restart.
func TestE2E_Flags(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })

	app := e.writeApp("v1")
	flagsFile, err := filepath.Abs("../../examples/flags.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e.must(0, "validate", "-f", app, "-f", flagsFile)
	out := e.must(0, "apply", "-f", app, "-f", flagsFile, "-f", "testdata/flags.flagd.json")
	for _, want := range []string{"FlagSet shop", "FlagSet web-flags", "App web"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	e.must(0, "plan", "-f", app, "-f", flagsFile, "-f", "testdata/flags.flagd.json") // nothing left to change

	eval := func(key, ctx string) map[string]any {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal([]byte(e.must(0, "flags", "eval", key, "--context", ctx, "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := eval("new-checkout", `{"email": "ann@example.com"}`); v["variant"] != "on" || v["value"] != true {
		t.Errorf("new-checkout for staff = %v", v)
	}
	if v := eval("dark-mode", `{"tier": "beta"}`); v["variant"] != "on" {
		t.Errorf("dark-mode for beta = %v", v)
	}

	// OpenFeature SDKs reach the same flags over OFREP on the server's address.
	ofrepAt := func(base, key string) map[string]any {
		t.Helper()
		resp, err := http.Post(base+"/ofrep/v1/evaluate/flags/"+key, "application/json", strings.NewReader(`{"context":{"email":"ann@example.com"}}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	ofrep := func(key string) map[string]any { return ofrepAt(e.server, key) }
	if v := ofrep("new-checkout"); v["variant"] != "on" || v["reason"] != "TARGETING_MATCH" {
		t.Errorf("OFREP new-checkout = %v", v)
	}
	// The default environment's base URL names it too; another environment's does not exist.
	if v := ofrepAt(e.server+"/env/default", "new-checkout"); v["variant"] != "on" {
		t.Errorf("OFREP through /env/default: %v", v)
	}
	if v := ofrepAt(e.server+"/env/staging", "new-checkout"); v["error"] == nil {
		t.Errorf("OFREP through /env/staging: %v, want an error naming the environment", v)
	}

	// Once staging exists, its flags are its own: the same file applied there, then a flag
	// disabled in default only.
	envs := filepath.Join(e.dir, "environments.yaml")
	if err := os.WriteFile(envs, []byte(e2eEnvironments), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must(0, "apply", "-f", envs)
	if v := ofrepAt(e.server+"/env/staging", "new-checkout"); v["errorCode"] != "FLAG_NOT_FOUND" {
		t.Errorf("OFREP through /env/staging before its flags: %v, want FLAG_NOT_FOUND", v)
	}
	e.must(0, "-e", "staging", "apply", "-f", flagsFile)

	e.must(0, "flags", "disable", "new-checkout", "--reason", "checkout errors")
	if v := ofrep("new-checkout"); v["reason"] != "DISABLED" {
		t.Errorf("OFREP new-checkout after disable = %v", v)
	}
	if v := ofrepAt(e.server+"/env/staging", "new-checkout"); v["variant"] != "on" || v["reason"] != "TARGETING_MATCH" {
		t.Errorf("OFREP new-checkout in staging after default's disable = %v", v)
	}
	if v := eval("new-checkout", `{"email": "ann@example.com"}`); v["reason"] != "DISABLED" {
		t.Errorf("new-checkout after disable = %v", v)
	}
	hist := e.must(0, "flags", "history", "new-checkout")
	if lines := strings.Split(strings.TrimSpace(hist), "\n"); len(lines) != 3 ||
		!strings.Contains(lines[1], "local-admin") || !strings.Contains(lines[1], "DISABLED") || !strings.Contains(lines[1], "checkout errors") {
		t.Errorf("history:\n%s", hist)
	}
	e.must(0, "flags", "rollback", "shop", "--to", "1")
	if v := eval("new-checkout", `{"email": "ann@example.com"}`); v["variant"] != "on" {
		t.Errorf("new-checkout after rollback = %v", v)
	}
	events := e.must(0, "events")
	for _, want := range []string{"flag.changed", "flagset.rolledBack", "flagset.applied"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %s:\n%s", want, events)
		}
	}
	e.must(1, "flags", "enable", "no-such-flag")

	// The flags in force are read from the store when the server starts again.
	e.stopServer(os.Interrupt)
	e.startServer()
	if v := eval("new-checkout", `{"email": "ann@example.com"}`); v["variant"] != "on" {
		t.Errorf("new-checkout after restart = %v", v)
	}
	list := e.must(0, "flags", "list")
	if !strings.Contains(list, "new-checkout") || !strings.Contains(list, "dark-mode") {
		t.Errorf("flags list:\n%s", list)
	}
	e.must(0, "flags", "stale", "--unevaluated-for", "1h")
}
