package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/metric/builtin"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

// rampWorld is a real engine on a real SQLite file, its API served over real HTTP, and the
// builtin provider reading the outcomes reported to that API.
type rampWorld struct {
	eng    *engine.Engine
	store  *sqlite.Store
	client *httpapi.Client
	url    string
	token  string
}

func newRampWorld(t *testing.T) *rampWorld {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := flags.NewOutcomes(nil)
	runner := analysis.NewRunner(analysis.Config{Store: st, Providers: map[string]slipway.Provider{
		"builtin": builtin.NewWithOutcomes(nil, outcomes),
	}})
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{}), Analysis: runner, Outcomes: outcomes,
		Poll: 5 * time.Millisecond, Resync: 50 * time.Millisecond})
	tokens := auth.New(auth.Config{Store: st})
	admin, err := tokens.CreateToken(context.Background(), slipway.NewToken{Name: "ramp-test", Role: slipway.RoleAdmin}, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Config{Tokens: tokens,
		Deployer: eng, Operator: eng, Status: eng, State: st,
		Flags: eng.FlagManager(), FlagOperator: eng.FlagManager(), Ramps: eng.FlagManager(), Outcomes: eng.FlagManager(),
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine Run: %v", err)
		}
		srv.Close()
		_ = st.Close()
	})
	client := httpapi.NewClient(srv.URL, srv.Client())
	client.SetToken(admin.Secret)
	return &rampWorld{eng: eng, store: st, client: client, url: srv.URL, token: admin.Secret}
}

// rampSet declares template variant-errors (the reported error rate of {{variant}} must stay
// under 10%) and flag checkout ramping variant "on" through 5%, 25%, 50% and 100%.
func rampSet() slipway.Set {
	off := "off"
	tpl := slipway.AnalysisTemplate{Name: "variant-errors", Metrics: []slipway.Metric{{
		Name: "error-rate", Count: 2, Interval: slipway.Duration(100 * time.Millisecond),
		// Give the app time to report once the ramp starts.
		InitialDelay:     slipway.Duration(200 * time.Millisecond),
		SuccessCondition: "result < 0.1",
		Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
			Metric: slipway.BuiltinOutcomeRate, Flag: "{{flag}}", Variant: "{{variant}}", Outcome: "error",
			Window: slipway.Duration(2 * time.Second),
		}},
	}}}
	step := func(w int) slipway.RampStep {
		return slipway.RampStep{Weight: w, Pause: slipway.Duration(150 * time.Millisecond)}
	}
	fs := slipway.FlagSet{ID: "web", Flags: map[string]slipway.Flag{"checkout": {
		State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Ramp: &slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{step(5), step(25), step(50), step(100)},
			Analysis: &slipway.AnalysisRef{Templates: []string{"variant-errors"}}},
	}}}
	return slipway.Set{Templates: []slipway.AnalysisTemplate{tpl}, FlagSets: []slipway.FlagSet{fs}}
}

// reportOutcomes posts, over HTTP and until ctx ends, outcomes of both variants: errorsOn of
// every 10 outcomes of "on" are errors; "off" is healthy.
func reportOutcomes(ctx context.Context, c *httpapi.Client, errorsOn int64) chan error {
	done := make(chan error, 1)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			reports := []slipway.OutcomeReport{{Variant: "on", Outcome: "success", Count: 10 - errorsOn}, {Variant: "off", Outcome: "success", Count: 10}}
			if errorsOn > 0 {
				reports = append(reports, slipway.OutcomeReport{Variant: "on", Outcome: "error", Count: errorsOn})
			}
			if err := c.ReportOutcomes(ctx, "checkout", reports); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-t.C:
			}
		}
	}()
	return done
}

// waitRamp polls the ramp over the API until it reaches phase, failing at the deadline.
func waitRamp(t *testing.T, c *httpapi.Client, phase slipway.Phase) slipway.Ramp {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last slipway.Ramp
	var err error
	for time.Now().Before(deadline) {
		last, err = c.Ramp(context.Background(), "checkout")
		if err == nil && last.Phase == phase {
			return last
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("ramp never reached %s: last %+v, err %v", phase, last, err)
	return last
}

// servedWeight reads the weight the flag in force serves, from its stored targeting.
func servedWeight(t *testing.T, c *httpapi.Client) int {
	t.Helper()
	fi, err := c.Flag(context.Background(), "checkout")
	if err != nil {
		t.Fatal(err)
	}
	w, ok := flags.RampWeight(*fi.Flag)
	if !ok {
		t.Fatalf("flag targeting %s is not a ramp", fi.Flag.Targeting)
	}
	return w
}

// assertSticky evaluates 5,000 users against every stored version of the flag, oldest
// first, and fails when one moves from the ramped variant back to the other while the ramp
// raises the weight (a roll back to 0 is the one allowed way back).
func assertSticky(t *testing.T, c *httpapi.Client) (weights []int) {
	t.Helper()
	hist, err := c.FlagHistory(context.Background(), "checkout")
	if err != nil {
		t.Fatal(err)
	}
	on := map[int]bool{}
	for i := len(hist) - 1; i >= 0; i-- {
		f := *hist[i].Flag
		w, _ := flags.RampWeight(f)
		weights = append(weights, w)
		if w == 0 {
			continue
		}
		set, err := flags.Compile(slipway.FlagSet{ID: "web", Flags: map[string]slipway.Flag{"checkout": f}})
		if err != nil {
			t.Fatal(err)
		}
		for u := range 5000 {
			v := set.Evaluate("checkout", map[string]any{"targetingKey": fmt.Sprintf("user-%d", u)}, time.Time{}).Variant
			if on[u] && v != "on" {
				t.Fatalf("version %d (weight %d): user-%d moved from on back to %s", hist[i].Version, w, u, v)
			}
			on[u] = v == "on"
		}
	}
	return weights
}

func TestRamp_EndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	t.Run("a variant with a high error rate is rolled back", func(t *testing.T) {
		w := newRampWorld(t)
		ctx, stop := context.WithCancel(context.Background())
		if _, err := w.eng.Apply(ctx, rampSet(), slipway.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		reported := reportOutcomes(ctx, w.client, 5) // half of "on" fails
		r := waitRamp(t, w.client, slipway.PhaseAborted)
		stop()
		if err := <-reported; err != nil {
			t.Fatalf("report outcomes: %v", err)
		}
		if r.Weight != 0 || r.Run == nil || r.Run.Phase != slipway.VerdictFailed {
			t.Fatalf("ramp = %+v; want weight 0 after a failed run", r)
		}
		// The ramp is persisted before the flag changes: wait for the flag.
		deadline := time.Now().Add(10 * time.Second)
		for got := servedWeight(t, w.client); got != 0; got = servedWeight(t, w.client) {
			if time.Now().After(deadline) {
				t.Fatalf("flag serves weight %d; want 0", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
		evs, err := w.store.Events(context.Background(), slipway.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var rolled *slipway.Event
		measured := 0
		for i := range evs {
			switch evs[i].Kind {
			case slipway.EventRampAborted:
				rolled = &evs[i]
			case slipway.EventMeasurement:
				measured++
			}
		}
		if measured == 0 {
			t.Fatal("the ramp's measurements left no events")
		}
		if rolled == nil || rolled.Actor != slipway.ActorAnalysis || !strings.Contains(rolled.Reason, "error-rate") {
			t.Fatalf("rolled back event = %+v; want one by analysis whose reason names the failed metric", rolled)
		}
		// Nobody is on "on" any more, in the flags in force.
		ev, err := w.client.EvaluateFlag(context.Background(), "checkout", map[string]any{"targetingKey": "user-1"})
		if err != nil || ev.Variant != "off" {
			t.Fatalf("evaluate after roll back = %+v, %v; want off", ev, err)
		}
		assertSticky(t, w.client)
	})

	t.Run("a healthy variant reaches 100%", func(t *testing.T) {
		w := newRampWorld(t)
		ctx, stop := context.WithCancel(context.Background())
		if _, err := w.eng.Apply(ctx, rampSet(), slipway.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		reported := reportOutcomes(ctx, w.client, 0)
		r := waitRamp(t, w.client, slipway.PhaseCompleted)
		stop()
		if err := <-reported; err != nil {
			t.Fatalf("report outcomes: %v", err)
		}
		if r.Weight != slipway.RampTotal || r.Step != 3 {
			t.Fatalf("ramp = %+v; want the last step at 100%%", r)
		}
		// Each step's run lives with every other run: listed by the flag over the API,
		// each one found by its ID, the ramp's current one among them.
		runs, err := w.client.FlagAnalysisRuns(context.Background(), r.Flag)
		if err != nil || len(runs) != 4 {
			t.Fatalf("runs of the ramp over the API: %d, %v; want one per step (4)", len(runs), err)
		}
		for i, run := range runs {
			if run.Flag != r.Flag || run.Kind != slipway.AnalysisRamp || run.Step != i || run.Phase != slipway.VerdictSuccessful {
				t.Errorf("run %d: flag %q kind %q step %d phase %s", i, run.Flag, run.Kind, run.Step, run.Phase)
			}
			if got, err := w.client.AnalysisRun(context.Background(), run.ID); err != nil || got.ID != run.ID {
				t.Errorf("run %s by its ID: %v", run.ID, err)
			}
		}
		if r.Run == nil || runs[3].ID != r.Run.ID {
			t.Errorf("the ramp's current run is not the last step's")
		}
		deadline := time.Now().Add(10 * time.Second)
		for got := servedWeight(t, w.client); got != slipway.RampTotal; got = servedWeight(t, w.client) {
			if time.Now().After(deadline) {
				t.Fatalf("flag serves weight %d; want %d", got, slipway.RampTotal)
			}
			time.Sleep(5 * time.Millisecond)
		}
		weights := assertSticky(t, w.client)
		if fmt.Sprint(weights) != "[0 500 2500 5000 10000]" {
			t.Fatalf("weights over the flag's versions = %v; want [0 500 2500 5000 10000]", weights)
		}
		// Applying the same file again leaves the ramp where it is.
		p, err := w.eng.Apply(context.Background(), rampSet(), slipway.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range p.Changes {
			if ch.Kind == slipway.KindFlagSet && ch.Action != slipway.ActionUnchanged {
				t.Fatalf("re-apply changed the flag set: %+v", ch)
			}
		}
		if got := servedWeight(t, w.client); got != slipway.RampTotal {
			t.Fatalf("after re-apply the flag serves %d", got)
		}
	})

	t.Run("outcomes of unknown flags and variants are refused", func(t *testing.T) {
		w := newRampWorld(t)
		if _, err := w.eng.Apply(context.Background(), rampSet(), slipway.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		err := w.client.ReportOutcomes(context.Background(), "nope", []slipway.OutcomeReport{{Variant: "on", Outcome: "error"}})
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Fatalf("unknown flag: %v; want ENOTFOUND", err)
		}
		err = w.client.ReportOutcomes(context.Background(), "checkout", []slipway.OutcomeReport{{Variant: "maybe", Outcome: "error"}})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("unknown variant: %v; want EINVALID", err)
		}
		req, err := http.NewRequest(http.MethodPost, w.url+"/api/v1/flags/checkout/outcomes",
			strings.NewReader(`{"variant":"on","outcome":"error","count":3}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+w.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a single report: status %d; want 200", resp.StatusCode)
		}
	})
}
