package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRampHook builds examples/ramp-hook and runs it against the cluster's server until the
// test ends; it returns the address it serves.
func startRampHook(t *testing.T, c *cluster) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "ramp-hook")
	if out, err := exec.Command("go", "build", "-o", exe, "../examples/ramp-hook").CombinedOutput(); err != nil {
		t.Fatalf("go build ramp-hook: %v\n%s", err, out)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, exe)
	// As the example's comments say: a deployer token of its own to report outcomes with.
	token := strings.TrimSpace(c.must("token", "create", "checkout-app-"+strings.TrimPrefix(addr, "127.0.0.1:"), "--role", "deployer"))
	cmd.Env = append(os.Environ(), "SLIPWAY_URL="+c.server, "LISTEN="+addr, "SLIPWAY_TOKEN="+token)
	logf, err := os.Create(filepath.Join(c.dir, "ramp-hook.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("ramp-hook log:\n%s", lastLines(string(b), 20))
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := checkout(addr, "probe"); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("ramp-hook does not answer on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkout GETs the ramp hook's /checkout for user and returns the status code and body.
func checkout(addr, user string) (int, string, error) {
	resp, err := http.Get("http://" + addr + "/checkout?user=" + user)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// ramp: beside the ramp hook, whose new payment path fails one request in three, the ramp of
// new-payment is rolled back at its first step by its analysis: "on" goes back to 0%, also
// for the users who had it.
func exampleRamp(t *testing.T) {
	c := newCluster(t)
	c.must("apply", "-f", filepath.Join(examplesDir, "ramp", "ramp.yaml"))
	addr := startRampHook(t, c)

	// Users check out one after another; those the ramp gave "on" come back, so that the
	// variant's outcomes are a real sample even at 1%.
	var onUsers []string
	var ramp struct {
		Phase, Reason string
		Step, Weight  int
	}
	next, checked := 0, time.Now()
	deadline := time.Now().Add(90 * time.Second)
	for {
		user := "u" + strconv.Itoa(next)
		next++
		code, body, err := checkout(addr, user)
		if err != nil {
			t.Fatalf("checkout: %v", err)
		}
		if code == http.StatusInternalServerError || strings.Contains(body, "new payment: true") {
			onUsers = append(onUsers, user)
		}
		for _, u := range onUsers[max(0, len(onUsers)-20):] {
			if _, _, err := checkout(addr, u); err != nil {
				t.Fatalf("checkout: %v", err)
			}
		}
		if time.Since(checked) < 500*time.Millisecond {
			continue
		}
		checked = time.Now()
		if err := json.Unmarshal([]byte(c.must("flags", "ramp", "new-payment", "-o", "json")), &ramp); err != nil {
			t.Fatal(err)
		}
		if ramp.Phase == "Aborted" {
			break
		}
		if ramp.Phase != "Progressing" || time.Now().After(deadline) {
			t.Fatalf("ramp of new-payment: %+v after %d users (%d on); want it rolled back by its analysis", ramp, next, len(onUsers))
		}
	}
	t.Logf("ramp of new-payment %s after %d users checked out, %d of them on the new payment path: %s", ramp.Phase, next, len(onUsers), ramp.Reason)
	if ramp.Weight != 0 || ramp.Step != 0 || !strings.Contains(ramp.Reason, "error-rate") {
		t.Errorf("rolled back ramp: %+v; want share 0 at the first step, the analysis's metric in the reason", ramp)
	}
	if len(onUsers) == 0 {
		t.Fatal("no user had the new payment path")
	}
	for _, u := range onUsers[:min(5, len(onUsers))] {
		if v, _ := c.evalFlag("new-payment", `{"targetingKey": "`+u+`"}`); v != "off" {
			t.Errorf("new-payment for %s after the rollback: %q, want off", u, v)
		}
	}
}
