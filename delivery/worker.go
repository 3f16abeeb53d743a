package delivery

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/progress"
)

// releaseWorker moves one release on (a progress.Task keyed by release ID).
type releaseWorker struct {
	m  *Manager
	id string
}

var _ progress.Task = (*releaseWorker)(nil)

// Idle does nothing: a release's jobs run within its passes.
func (w *releaseWorker) Idle() {}

// Pass takes every step the release can take now: each decision is stored (with its events,
// under the release's generation) before the next is taken, so a restart carries on from
// the last one stored.
func (w *releaseWorker) Pass(ctx context.Context) (progress.Next, error) {
	m := w.m
	for range 64 {
		r, err := m.cfg.Store.Release(ctx, w.id)
		if slipway.ErrorCode(err) == slipway.ENOTFOUND {
			return progress.Next{}, nil
		}
		if err != nil {
			return progress.Next{}, err
		}
		if r.Phase.Terminal() {
			return progress.Next{}, nil
		}
		before := cloneRelease(r)
		s, err := m.advance(ctx, &r)
		if err != nil {
			return progress.Next{Active: true, Poll: true}, err
		}
		if !reflect.DeepEqual(before, r) || len(s.events) > 0 {
			r.UpdatedAt = m.cfg.Now()
			if err := m.cfg.Store.SaveRelease(ctx, &r, s.events...); slipway.ErrorCode(err) == slipway.ECONFLICT {
				continue // someone approved or overrode meanwhile: decide again
			} else if err != nil {
				return progress.Next{Active: true, Poll: true}, err
			}
		}
		if r.Phase.Terminal() {
			return progress.Next{}, nil
		}
		if s.again {
			continue
		}
		return s.next, nil
	}
	return progress.Next{Active: true, Poll: true}, fmt.Errorf("release %s: state kept changing underneath", w.id)
}

// step is what one decision leaves: events to store with it, whether another decision can
// be taken at once, and otherwise when to look again.
type step struct {
	events []slipway.Event
	again  bool
	next   progress.Next
}

// advance takes the release's next step in its current stage, acting on the world where
// the step says so (deploying, running a job), and changes r.
func (m *Manager) advance(ctx context.Context, r *slipway.Release) (step, error) {
	now := m.cfg.Now()
	var s step
	event := func(kind, msg, reason string) {
		s.events = append(s.events, slipway.Event{Time: now, App: r.App, Kind: kind, Actor: slipway.ActorPipeline,
			Message: "release " + r.ID + ": " + msg, Reason: reason})
	}
	fail := func(kind, reason string) {
		rs := &r.Stages[r.Stage]
		rs.State, rs.Message = slipway.StageFailed, reason
		r.Phase, r.Reason = slipway.PhaseAborted, reason
		event(kind, fmt.Sprintf("stopped in stage %s; later stages never see it", rs.Name), reason)
	}
	pl, ok := m.pipeline(r.Pipeline)
	if !ok {
		fail(slipway.EventReleaseAborted, "pipeline "+r.Pipeline+" no longer exists")
		return s, nil
	}
	if !sameStages(pl, *r) {
		fail(slipway.EventReleaseAborted, "pipeline "+r.Pipeline+" changed its stages; release the version again")
		return s, nil
	}
	rs, st := &r.Stages[r.Stage], pl.Stages[r.Stage]
	switch rs.State {
	case slipway.StagePending, slipway.StageWaiting:
		if rs.State == slipway.StagePending {
			rs.State, rs.EnteredAt = slipway.StageWaiting, &now
		}
		if g, closed := m.gates(ctx, *r, st, *rs); closed {
			if rs.Waiting != g.waiting {
				rs.Waiting = g.waiting
				event(slipway.EventReleaseWaiting, "waits to enter stage "+st.Name+": "+g.waiting, "")
			}
			s.next = progress.Next{Active: true, WakeAt: g.until}
			return s, nil
		}
		// An environment the server declares but does not run (it could not start) holds the
		// release back until a restart brings it up; it does not end the release.
		if msg := m.unserved(st.Environments); msg != "" {
			if rs.Waiting != msg {
				rs.Waiting = msg
				event(slipway.EventReleaseWaiting, "waits to enter stage "+st.Name+": "+msg, "")
			}
			s.next = progress.Next{Active: true, Poll: true}
			return s, nil
		}
		rs.Waiting = ""
		for _, env := range st.Environments {
			id, err := m.deploy(ctx, *r, st.Name, env)
			if code := slipway.ErrorCode(err); code == slipway.EINVALID || code == slipway.ENOTFOUND {
				fail(slipway.EventReleaseAborted, fmt.Sprintf("cannot deploy to %s: %s", env, slipway.ErrorMessage(err)))
				return s, nil
			} else if err != nil {
				return s, err
			}
			rs.Rollouts = append(rs.Rollouts, slipway.ReleaseRollout{Environment: env, Rollout: id})
		}
		rs.State, rs.DeployedAt = slipway.StageDeploying, &now
		event(slipway.EventReleaseStage, fmt.Sprintf("stage %s: deploying %s to %s", st.Name, r.Version, strings.Join(st.Environments, ", ")), "")
		s.again = true
	case slipway.StageDeploying:
		done, waiting := true, ""
		for i, ro := range rs.Rollouts {
			if ro.Rollout == "" {
				continue
			}
			p, ok := m.cfg.Places(ro.Environment)
			if !ok {
				done = false
				if waiting == "" {
					waiting = m.unserved([]string{ro.Environment})
				}
				continue
			}
			ru, err := p.State.Rollout(ctx, ro.Rollout)
			if err != nil {
				return s, err
			}
			rs.Rollouts[i].Phase = ru.Phase
			switch ru.Phase {
			case slipway.PhaseAborted:
				fail(slipway.EventReleaseAborted, fmt.Sprintf("rollout %s in %s was aborted: %s", ru.ID, ro.Environment, ru.Reason))
				return s, nil
			case slipway.PhaseCompleted:
			case slipway.PhasePaused:
				done = false
				if waiting == "" {
					waiting = fmt.Sprintf("rollout %s in %s is paused: %s (slipway -e %s promote %s)", ru.ID, ro.Environment, ru.Reason, ro.Environment, r.App)
				}
			default:
				done = false
			}
		}
		rs.Waiting = waiting
		if !done {
			s.next = progress.Next{Active: true, Poll: true}
			return s, nil
		}
		if len(st.Verify) > 0 {
			rs.State = slipway.StageVerifying
		} else {
			m.startSoak(r, st, now)
		}
		s.again = true
	case slipway.StageVerifying:
		for _, v := range st.Verify {
			if slices.Contains(rs.Verified, v.Name) {
				continue
			}
			if err := m.verify(ctx, *r, st, v); err != nil {
				if ctx.Err() != nil {
					return s, ctx.Err()
				}
				fail(slipway.EventReleaseAborted, fmt.Sprintf("verification %s failed: %s", v.Name, slipway.ErrorMessage(err)))
				return s, nil
			}
			rs.Verified = append(rs.Verified, v.Name)
			event(slipway.EventReleaseVerified, fmt.Sprintf("stage %s: verification %s passed", st.Name, v.Name), "")
			s.again = true
			return s, nil // stored before the next job runs
		}
		m.startSoak(r, st, now)
		s.again = true
	case slipway.StageSoaking:
		var envs []string
		for _, ro := range rs.Rollouts {
			envs = append(envs, ro.Environment)
		}
		if msg := m.unserved(envs); msg != "" {
			// The soak cannot vouch for an environment it cannot see: it waits for it.
			rs.Waiting = msg
			s.next = progress.Next{Active: true, Poll: true}
			return s, nil
		}
		rs.Waiting = ""
		if problem, err := m.healthy(ctx, *r, *rs); err != nil {
			return s, err
		} else if problem != "" {
			fail(slipway.EventReleaseAborted, problem)
			return s, nil
		}
		if rs.SoakUntil != nil && now.Before(*rs.SoakUntil) {
			s.next = progress.Next{Active: true, WakeAt: *rs.SoakUntil, Poll: true}
			return s, nil
		}
		rs.State, rs.PassedAt = slipway.StagePassed, &now
		event(slipway.EventReleaseStage, "passed stage "+st.Name, "")
		s.again = true
	case slipway.StagePassed:
		if r.Stage == len(r.Stages)-1 {
			r.Phase, r.Reason = slipway.PhaseCompleted, "through every stage"
			event(slipway.EventReleaseCompleted, fmt.Sprintf("%s %s went through every stage", r.App, r.Version), "")
			return s, nil
		}
		r.Stage++
		r.Stages[r.Stage].State = slipway.StagePending
		s.again = true
	default:
		fail(slipway.EventReleaseAborted, "stage "+rs.Name+" is in an unknown state "+rs.State)
	}
	return s, nil
}

// unserved says which of envs this server does not run now, or "".
func (m *Manager) unserved(envs []string) string {
	for _, env := range envs {
		if _, ok := m.cfg.Places(env); !ok {
			return "environment " + env + " is not running on this server (it could not start; fix it and restart the server)"
		}
	}
	return ""
}

// startSoak moves the stage to its soak, or past it when it has none.
func (m *Manager) startSoak(r *slipway.Release, st slipway.Stage, now time.Time) {
	rs := &r.Stages[r.Stage]
	if st.Soak.D() <= 0 {
		rs.State, rs.PassedAt = slipway.StagePassed, &now
		return
	}
	until := now.Add(st.Soak.D())
	rs.State, rs.SoakUntil = slipway.StageSoaking, &until
}

// gates returns the first closed gate of stage st for r: a freeze, a deploy window (both
// unless an admin overrode them), a spent error budget (unless r is a fix), an approval.
func (m *Manager) gates(ctx context.Context, r slipway.Release, st slipway.Stage, rs slipway.ReleaseStage) (gate, bool) {
	now := m.cfg.Now()
	if len(rs.Overrides) == 0 {
		if g, closed := freezeGate(st, now); closed {
			return g, true
		}
		if g, closed := windowGate(st, now); closed {
			return g, true
		}
	}
	if g, closed := m.budgetGate(ctx, st, r.Fix); closed {
		return g, true
	}
	if a := st.Approval; a != nil && len(rs.Approvals) == 0 {
		return gate{waiting: "approval by a " + string(approvalRole(a)) + " (slipway release approve " + r.ID + ")"}, true
	}
	return gate{}, false
}

// approvalRole is the least role that may approve entering a stage.
func approvalRole(a *slipway.Approval) slipway.Role {
	if a == nil || a.Role == "" {
		return slipway.RoleDeployer
	}
	return a.Role
}

// deploy gives environment env the app at the release's version and returns the rollout
// that carries it there ("" when the app ran that version already).
func (m *Manager) deploy(ctx context.Context, r slipway.Release, stage, env string) (string, error) {
	p, ok := m.cfg.Places(env)
	if !ok {
		return "", slipway.Errorf(slipway.EINVALID, "environment %s does not exist on this server", env)
	}
	st, err := p.State.App(ctx, r.App)
	if slipway.ErrorCode(err) == slipway.ENOTFOUND {
		return "", slipway.Errorf(slipway.ENOTFOUND, "app %s does not exist in environment %s; apply it there first", r.App, env)
	}
	if err != nil {
		return "", err
	}
	app := st.Spec
	app.Version = r.Version
	plan, err := p.Deployer.Apply(ctx, slipway.Set{Apps: []slipway.App{app}},
		slipway.ApplyOptions{Actor: slipway.ActorPipeline, Reason: "release " + r.ID + " (stage " + stage + ")"})
	if err != nil {
		return "", err
	}
	for _, ch := range plan.Changes {
		if ch.Rollout != "" {
			return ch.Rollout, nil
		}
	}
	// Unchanged: the app runs the version already, perhaps by this very release's apply
	// before a restart; then its latest rollout is the release's.
	rolls, err := p.State.Rollouts(ctx, r.App, 1)
	if err != nil {
		return "", err
	}
	if len(rolls) > 0 && rolls[0].ToVersion == r.Version && !rolls[0].Phase.Terminal() {
		return rolls[0].ID, nil
	}
	return "", nil
}

// verify runs verification job v against stage st; nil when it exits 0.
func (m *Manager) verify(ctx context.Context, r slipway.Release, st slipway.Stage, v slipway.VerifyJob) error {
	if m.cfg.Verify == nil {
		return slipway.Errorf(slipway.EINVALID, "this server runs no verification jobs")
	}
	job := v.Job
	job.Env = maps.Clone(job.Env)
	if job.Env == nil {
		job.Env = map[string]string{}
	}
	job.Env["SLIPWAY_RELEASE"], job.Env["SLIPWAY_APP"], job.Env["SLIPWAY_VERSION"] = r.ID, r.App, r.Version
	job.Env["SLIPWAY_STAGE"], job.Env["SLIPWAY_ENVIRONMENTS"] = st.Name, strings.Join(st.Environments, ",")
	out, err := m.cfg.Verify.Measure(ctx, slipway.Metric{Name: v.Name, Provider: slipway.ProviderSpec{Job: &job}})
	if err != nil {
		return err
	}
	res, _ := out.(map[string]any)
	code, err := number(res["exitCode"])
	if err != nil {
		return slipway.Errorf(slipway.EINVALID, "the job reported no exit code")
	}
	if code != 0 {
		output, _ := res["output"].(string)
		return slipway.Errorf(slipway.EINVALID, "exit %v: %s", code, lastLine(output))
	}
	return nil
}

// healthy checks, during a soak, that each environment of the stage still runs the
// release's version through the release's rollout; it returns what is wrong, or "".
func (m *Manager) healthy(ctx context.Context, r slipway.Release, rs slipway.ReleaseStage) (string, error) {
	for _, ro := range rs.Rollouts {
		p, ok := m.cfg.Places(ro.Environment)
		if !ok {
			return "environment " + ro.Environment + " is no longer served", nil
		}
		rolls, err := p.State.Rollouts(ctx, r.App, 1)
		if err != nil {
			return "", err
		}
		if len(rolls) == 0 {
			return fmt.Sprintf("app %s has no rollout in %s any more", r.App, ro.Environment), nil
		}
		latest := rolls[0]
		switch {
		case latest.ToVersion != r.Version:
			return fmt.Sprintf("%s in %s moved to version %s (rollout %s) during the soak", r.App, ro.Environment, latest.ToVersion, latest.ID), nil
		case latest.Phase == slipway.PhaseAborted:
			return fmt.Sprintf("rollout %s in %s was aborted during the soak: %s", latest.ID, ro.Environment, latest.Reason), nil
		}
	}
	return "", nil
}

// sameStages reports whether pl still has the stages r was created with, by name.
func sameStages(pl slipway.Pipeline, r slipway.Release) bool {
	if len(pl.Stages) != len(r.Stages) {
		return false
	}
	for i := range pl.Stages {
		if pl.Stages[i].Name != r.Stages[i].Name {
			return false
		}
	}
	return true
}

// lastLine is the last non-empty line of s, at most 200 bytes.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

// cloneRelease copies r deeply enough to compare it after advance changed it.
func cloneRelease(r slipway.Release) slipway.Release {
	c := r
	c.Stages = make([]slipway.ReleaseStage, len(r.Stages))
	for i, s := range r.Stages {
		s.Rollouts = slices.Clone(s.Rollouts)
		s.Approvals = slices.Clone(s.Approvals)
		s.Overrides = slices.Clone(s.Overrides)
		s.Verified = slices.Clone(s.Verified)
		c.Stages[i] = s
	}
	return c
}
