package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

// fakeFlags records what the flag routes ask and answers from one fixed flag.
type fakeFlags struct {
	mu        sync.Mutex
	changes   []slipway.FlagChange
	rollbacks []slipway.FlagRollback
	stale     []slipway.StaleQuery
	evalCtx   map[string]any
}

var _ slipway.FlagReader = (*fakeFlags)(nil)
var _ slipway.FlagOperator = (*fakeFlags)(nil)

func (f *fakeFlags) Flags(context.Context) ([]slipway.FlagInfo, error) {
	return []slipway.FlagInfo{{Key: "dark-mode", Set: "web", Version: 1, State: slipway.FlagEnabled}}, nil
}

func (f *fakeFlags) Flag(_ context.Context, key string) (slipway.FlagInfo, error) {
	if key != "dark-mode" {
		return slipway.FlagInfo{}, slipway.Errorf(slipway.ENOTFOUND, "flag %q not found", key)
	}
	return slipway.FlagInfo{Key: key, Set: "web", Version: 1, State: slipway.FlagEnabled}, nil
}

func (f *fakeFlags) FlagHistory(_ context.Context, key string) ([]slipway.FlagVersion, error) {
	return []slipway.FlagVersion{{Set: "web", Version: 1, Actor: "ann"}}, nil
}

func (f *fakeFlags) StaleFlags(_ context.Context, q slipway.StaleQuery) ([]slipway.FlagInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stale = append(f.stale, q)
	return nil, nil
}

func (f *fakeFlags) EvaluateFlag(_ context.Context, key string, c map[string]any) (slipway.Evaluation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evalCtx = c
	return slipway.Evaluation{Key: key, Value: false, Variant: "off", Reason: slipway.ReasonStatic}, nil
}

func (f *fakeFlags) ChangeFlag(_ context.Context, c slipway.FlagChange) (slipway.FlagInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, c)
	if c.Kind == slipway.FlagSetDefault && c.Variant == "blue" {
		return slipway.FlagInfo{}, slipway.Errorf(slipway.EINVALID, "no variant blue")
	}
	return slipway.FlagInfo{Key: c.Key, Version: 2}, nil
}

func (f *fakeFlags) RollbackFlagSet(_ context.Context, r slipway.FlagRollback) (slipway.FlagVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbacks = append(f.rollbacks, r)
	return slipway.FlagVersion{Set: r.Set, Version: 3, Actor: r.Actor}, nil
}

func TestServer_FlagRoutes(t *testing.T) {
	ctx := context.Background()
	ff := &fakeFlags{}
	srv := apitest.NewServer(t, httpapi.Config{Flags: ff, FlagOperator: ff})
	c := apitest.NewClient(srv.URL)
	c.SetToken(apitest.DeployerSecret)

	if fs, err := c.Flags(ctx); err != nil || len(fs) != 1 || fs[0].Key != "dark-mode" {
		t.Errorf("Flags = %+v, %v", fs, err)
	}
	if _, err := c.Flag(ctx, "nope"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("Flag(nope) = %v, want ENOTFOUND", err)
	}
	if h, err := c.FlagHistory(ctx, "dark-mode"); err != nil || len(h) != 1 || h[0].Actor != "ann" {
		t.Errorf("FlagHistory = %+v, %v", h, err)
	}
	ev, err := c.EvaluateFlag(ctx, "dark-mode", map[string]any{"targetingKey": "u1"})
	if err != nil || ev.Variant != "off" || ev.Value != false || ff.evalCtx["targetingKey"] != "u1" {
		t.Errorf("EvaluateFlag = %+v, %v (context seen %v)", ev, err, ff.evalCtx)
	}
	if _, err := c.ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagDisable, Key: "dark-mode", Reason: "why"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeFlag(ctx, slipway.FlagChange{Kind: slipway.FlagSetDefault, Key: "dark-mode", Variant: "blue"}); slipway.ErrorCode(err) != slipway.EINVALID {
		t.Errorf("default blue = %v, want EINVALID", err)
	}
	if got := ff.changes[0]; got.Kind != slipway.FlagDisable || got.Actor != "deployer" || got.Reason != "why" || got.Key != "dark-mode" {
		t.Errorf("change seen = %+v", got)
	}
	if v, err := c.RollbackFlagSet(ctx, slipway.FlagRollback{Set: "web", Version: 1}); err != nil || v.Version != 3 || ff.rollbacks[0].Actor != "deployer" {
		t.Errorf("RollbackFlagSet = %+v, %v", v, err)
	}
	if _, err := c.StaleFlags(ctx, slipway.StaleQuery{UnevaluatedFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if q := ff.stale[0]; q.UnevaluatedFor != time.Hour || q.SingleVariantFor != 0 {
		t.Errorf("stale query seen = %+v", q)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/v1/flags/stale", "", http.StatusOK},
		{"GET", "/api/v1/flags/stale?unevaluatedFor=soon", "", http.StatusBadRequest},
		{"POST", "/api/v1/flags/dark-mode/default", `{}`, http.StatusBadRequest},
		{"POST", "/api/v1/flags/dark-mode/enable", `{"colour": 1}`, http.StatusBadRequest},
		{"POST", "/api/v1/flagsets/web/rollback", `{"version": 0}`, http.StatusBadRequest},
		{"DELETE", "/api/v1/flags/dark-mode", "", http.StatusMethodNotAllowed},
	} {
		req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s %s: status %d, want %d", tc.method, tc.path, tc.body, resp.StatusCode, tc.status)
		}
	}
	if q := ff.stale[1]; q.UnevaluatedFor != httpapi.DefaultStaleFor || q.SingleVariantFor != httpapi.DefaultStaleFor {
		t.Errorf("stale defaults = %+v", q)
	}

	t.Run("without flags the routes are absent", func(t *testing.T) {
		srv := apitest.NewServer(t, httpapi.Config{})
		_, err := apitest.NewClient(srv.URL).Flags(ctx)
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Errorf("Flags = %v, want ENOTFOUND", err)
		}
	})
}
