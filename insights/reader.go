package insights

import (
	"context"
	"fmt"
	"time"

	"slipway.dev/slipway"
)

// Releases lists releases: slipway.ReleaseStore's Releases.
type Releases interface {
	// Releases lists releases newest first: of app when app is not "", at most limit (all
	// when limit <= 0).
	Releases(ctx context.Context, app string, limit int) ([]slipway.Release, error)
}

// Config is what a Reader reads from.
type Config struct {
	// Environments lists the environments the server serves (fleet.Fleet.Environments).
	Environments func(ctx context.Context) ([]slipway.Environment, error)
	// State returns environment name's store; false when the server does not serve it now
	// (its figures are then left out, and said to be).
	State func(name string) (slipway.StateReader, bool)
	// Releases are the server's releases (the default environment's store).
	Releases Releases
	// FailureHorizon: see Options.
	FailureHorizon time.Duration
	Now            func() time.Time
}

// Reader gathers a History from the stores and computes its figures. It implements
// slipway.InsightsReader.
type Reader struct {
	cfg Config
}

var _ slipway.InsightsReader = (*Reader)(nil)

// NewReader returns a Reader of cfg.
func NewReader(cfg Config) *Reader {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reader{cfg: cfg}
}

// Insights computes the figures of q over the history the stores keep now.
func (r *Reader) Insights(ctx context.Context, q slipway.InsightsQuery) (slipway.Insights, error) {
	now := r.cfg.Now()
	h, err := r.History(ctx, q.Environment)
	if err != nil {
		return slipway.Insights{}, err
	}
	return Compute(h, q, now, Options{FailureHorizon: r.cfg.FailureHorizon})
}

// History reads every rollout of every app of environment env (of every environment when
// env is ""), and every release. EUNAVAILABLE when env is not running.
func (r *Reader) History(ctx context.Context, env string) (History, error) {
	envs, err := r.cfg.Environments(ctx)
	if err != nil {
		return History{}, fmt.Errorf("list environments: %w", err)
	}
	var h History
	for _, e := range envs {
		if env != "" && e.Name != env {
			continue
		}
		st, ok := r.cfg.State(e.Name)
		if !ok && env != "" {
			return History{}, slipway.Errorf(slipway.EUNAVAILABLE, "environment %s is not running now; its history cannot be read", env)
		}
		if !ok {
			h.Unavailable = append(h.Unavailable, "environment "+e.Name+": it is not running now, so its figures are left out")
			continue
		}
		eh, err := readEnvironment(ctx, e, st)
		if err != nil {
			return History{}, err
		}
		h.Environments = append(h.Environments, eh)
	}
	if r.cfg.Releases != nil {
		if h.Releases, err = r.cfg.Releases.Releases(ctx, "", 0); err != nil {
			return History{}, fmt.Errorf("read releases: %w", err)
		}
	}
	return h, nil
}

// readEnvironment reads every rollout of every app of e.
func readEnvironment(ctx context.Context, e slipway.Environment, st slipway.StateReader) (EnvironmentHistory, error) {
	apps, err := st.Apps(ctx)
	if err != nil {
		return EnvironmentHistory{}, fmt.Errorf("read apps of environment %s: %w", e.Name, err)
	}
	eh := EnvironmentHistory{Environment: e}
	for _, a := range apps {
		rs, err := st.Rollouts(ctx, a.Spec.Name, 0)
		if slipway.ErrorCode(err) == slipway.ENOTFOUND {
			continue // deleted since Apps
		}
		if err != nil {
			return EnvironmentHistory{}, fmt.Errorf("read rollouts of %s in environment %s: %w", a.Spec.Name, e.Name, err)
		}
		eh.Rollouts = append(eh.Rollouts, rs...)
	}
	return eh, nil
}
