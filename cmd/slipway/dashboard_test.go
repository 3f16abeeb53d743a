package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardFile is the Grafana dashboard shipped with slipway.
const dashboardFile = "../../docs/grafana/slipway-rollouts.json"

// seriesName matches a slipway series name in a PromQL expression.
var seriesName = regexp.MustCompile(`\bslipway_[a-z0-9_]+\b`)

// dashboardSeries returns every slipway series the dashboard's panels and variables query.
func dashboardSeries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Query any }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	var names []string
	for _, e := range exprs {
		for _, n := range seriesName.FindAllString(e, -1) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// TestDashboard_QueriesSlipwaySeries: the dashboard parses and queries the rollout, analysis
// and proxy series (the demo's end-to-end test checks a running server exports each).
func TestDashboard_QueriesSlipwaySeries(t *testing.T) {
	names := dashboardSeries(t)
	for _, want := range []string{"slipway_rollout_phase", "slipway_rollout_canary_weight", "slipway_analysis_runs",
		"slipway_analysis_last_value", "slipway_analysis_sequential_evidence", "slipway_proxy_requests_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("the dashboard does not query %s (it queries %v)", want, names)
		}
	}
}

// checkDashboardSeries scrapes server's /metrics with token and checks that every series the
// dashboard queries has a sample there.
func checkDashboardSeries(t *testing.T, server, token string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, server+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	exported := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		exported[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	names := dashboardSeries(t)
	if len(names) < 8 {
		t.Fatalf("the dashboard queries only %v", names)
	}
	for _, n := range names {
		if !exported[n] {
			t.Errorf("the dashboard queries %s, which the running server does not export", n)
		}
	}
}
