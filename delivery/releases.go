package delivery

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

// Limits of a release request.
const (
	maxSourceField = 1024
	maxReason      = 1024
)

// CreateRelease starts a release of nr.App at nr.Version through the pipeline that carries
// the app: it enters the first stage at once. Unless the pipeline keeps them, older releases
// of the app still waiting at a gate are superseded by it.
func (m *Manager) CreateRelease(ctx context.Context, nr slipway.NewRelease) (slipway.Release, error) {
	if err := checkNewRelease(nr); err != nil {
		return slipway.Release{}, err
	}
	if err := m.lock(ctx); err != nil {
		return slipway.Release{}, err
	}
	defer m.unlock()
	pl, ok := m.pipelineOf(nr.App)
	if !ok {
		return slipway.Release{}, slipway.Errorf(slipway.ENOTFOUND, "no pipeline carries app %s; declare one (kind: Pipeline) that lists it in spec.apps", nr.App)
	}
	// One release of a version at a time (a tag pushed and created sends two deliveries).
	active, err := m.cfg.Store.ActiveReleases(ctx)
	if err != nil {
		return slipway.Release{}, err
	}
	for _, a := range active {
		if a.App == nr.App && a.Version == nr.Version {
			return a, slipway.Errorf(slipway.ECONFLICT, "release %s already carries %s %s through pipeline %s", a.ID, a.App, a.Version, a.Pipeline)
		}
	}
	now := m.cfg.Now()
	actor := nr.Actor
	if actor == "" {
		actor = "unknown"
	}
	trigger := nr.Source.Trigger
	if trigger == "" {
		trigger = "api"
	}
	r := slipway.Release{App: nr.App, Pipeline: pl.Name, Version: nr.Version, Source: nr.Source, Fix: nr.Fix,
		CreatedBy: actor, ChangedAt: nr.ChangedAt, CreatedAt: now, UpdatedAt: now, Phase: slipway.PhaseProgressing}
	r.Source.Trigger = trigger
	if r.ChangedAt.IsZero() || r.ChangedAt.After(now) {
		r.ChangedAt = now
	}
	for i, st := range pl.Stages {
		state := slipway.StagePending
		if i == 0 {
			state = slipway.StageWaiting
		}
		r.Stages = append(r.Stages, slipway.ReleaseStage{Name: st.Name, State: state})
	}
	r.Stages[0].EnteredAt = &now
	msg := fmt.Sprintf("%s %s created for pipeline %s (%s)", nr.App, nr.Version, pl.Name, trigger)
	if nr.Source.Commit != "" {
		msg += ", commit " + nr.Source.Commit
	}
	ev := slipway.Event{Time: now, App: nr.App, Kind: slipway.EventReleaseCreated, Actor: actor, Message: msg, Reason: nr.Reason}
	if err := m.cfg.Store.CreateRelease(ctx, &r, ev); err != nil {
		return slipway.Release{}, err
	}
	if !pl.KeepWaiting {
		if err := m.supersede(ctx, r, active); err != nil {
			m.log.Warn("supersede older releases failed", "release", r.ID, "err", err)
		}
	}
	m.workers.Wake(r.ID, nil)
	return r, nil
}

// supersede ends the older releases of r's app that still wait at a gate, among active
// (read under the manager's lock before r was created; each is read again when it moved).
func (m *Manager) supersede(ctx context.Context, r slipway.Release, active []slipway.Release) error {
	for _, old := range active {
		if old.App != r.App || old.ID == r.ID || old.Number > r.Number {
			continue
		}
		for range maxAttempts {
			rs := &old.Stages[old.Stage]
			if old.Phase.Terminal() || (rs.State != slipway.StageWaiting && rs.State != slipway.StagePending) {
				break
			}
			now := m.cfg.Now()
			reason := "superseded by " + r.ID + " (" + r.Version + ") while waiting to enter stage " + rs.Name
			rs.State, rs.Message = slipway.StageSkipped, reason
			old.Phase, old.Reason, old.SupersededBy, old.UpdatedAt = slipway.PhaseAborted, reason, r.ID, now
			ev := slipway.Event{Time: now, App: old.App, Kind: slipway.EventReleaseSuperseded, Actor: slipway.ActorPipeline,
				Message: "release " + old.ID + ": " + reason}
			err := m.cfg.Store.SaveRelease(ctx, &old, ev)
			if slipway.ErrorCode(err) != slipway.ECONFLICT {
				if err != nil {
					return err
				}
				m.workers.Wake(old.ID, nil)
				break
			}
			if old, err = m.cfg.Store.Release(ctx, old.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxAttempts bounds the retries of a write whose generation moved.
const maxAttempts = 8

// Releases lists releases newest first, of app when it is not "".
func (m *Manager) Releases(ctx context.Context, app string, limit int) ([]slipway.Release, error) {
	return m.cfg.Store.Releases(ctx, app, limit)
}

// Release returns release id.
func (m *Manager) Release(ctx context.Context, id string) (slipway.Release, error) {
	return m.cfg.Store.Release(ctx, id)
}

// Approve records actor's approval to enter the stage the release waits at.
func (m *Manager) Approve(ctx context.Context, id, actor string, role slipway.Role, reason string) (slipway.Release, error) {
	if len(reason) > maxReason {
		return slipway.Release{}, slipway.Errorf(slipway.EINVALID, "reason is %d bytes; use at most %d", len(reason), maxReason)
	}
	return m.letIn(ctx, id, func(r *slipway.Release, st slipway.Stage) (slipway.Event, error) {
		rs := &r.Stages[r.Stage]
		if st.Approval == nil {
			return slipway.Event{}, slipway.Errorf(slipway.ECONFLICT, "stage %s needs no approval", st.Name)
		}
		if need := approvalRole(st.Approval); !role.AtLeast(need) {
			return slipway.Event{}, slipway.Errorf(slipway.EFORBIDDEN, "entering stage %s needs the approval of a %s; your token is a %s", st.Name, need, role)
		}
		for _, a := range rs.Approvals {
			if a.Actor == actor {
				return slipway.Event{}, slipway.Errorf(slipway.ECONFLICT, "%s approved release %s for stage %s already", actor, r.ID, st.Name)
			}
		}
		now := m.cfg.Now()
		rs.Approvals = append(rs.Approvals, slipway.Approved{Actor: actor, Time: now, Reason: reason})
		return slipway.Event{Time: now, App: r.App, Kind: slipway.EventReleaseApproved, Actor: actor,
			Message: fmt.Sprintf("release %s: approved to enter stage %s", r.ID, st.Name), Reason: reason}, nil
	})
}

// Override lets the release through the freeze and deploy windows of the stage it waits to
// enter; the override is recorded with actor and reason, which is required.
func (m *Manager) Override(ctx context.Context, id, actor, reason string) (slipway.Release, error) {
	switch {
	case strings.TrimSpace(reason) == "":
		return slipway.Release{}, slipway.Errorf(slipway.EINVALID, "an override needs a reason (--reason), recorded with it")
	case len(reason) > maxReason:
		return slipway.Release{}, slipway.Errorf(slipway.EINVALID, "reason is %d bytes; use at most %d", len(reason), maxReason)
	}
	return m.letIn(ctx, id, func(r *slipway.Release, st slipway.Stage) (slipway.Event, error) {
		if len(st.Freezes) == 0 && len(st.Windows) == 0 {
			return slipway.Event{}, slipway.Errorf(slipway.ECONFLICT, "stage %s has no freeze or window to override", st.Name)
		}
		now := m.cfg.Now()
		rs := &r.Stages[r.Stage]
		rs.Overrides = append(rs.Overrides, slipway.Approved{Actor: actor, Time: now, Reason: reason})
		return slipway.Event{Time: now, App: r.App, Kind: slipway.EventReleaseOverridden, Actor: actor,
			Message: fmt.Sprintf("release %s: freeze and windows of stage %s overridden", r.ID, st.Name), Reason: reason}, nil
	})
}

// letIn changes a release waiting at a stage's gates with fn, stores it with fn's event
// under its generation (retrying when the worker moved it meanwhile), and wakes it.
func (m *Manager) letIn(ctx context.Context, id string, fn func(*slipway.Release, slipway.Stage) (slipway.Event, error)) (slipway.Release, error) {
	for range maxAttempts {
		r, err := m.cfg.Store.Release(ctx, id)
		if err != nil {
			return slipway.Release{}, err
		}
		if r.Phase.Terminal() {
			return r, slipway.Errorf(slipway.ECONFLICT, "release %s has ended (%s)", id, r.Phase)
		}
		rs := r.Stages[r.Stage]
		if rs.State != slipway.StageWaiting && rs.State != slipway.StagePending {
			return r, slipway.Errorf(slipway.ECONFLICT, "release %s is not waiting at a gate: stage %s is %s", id, rs.Name, rs.State)
		}
		pl, ok := m.pipeline(r.Pipeline)
		if !ok || !sameStages(pl, r) {
			return r, slipway.Errorf(slipway.ECONFLICT, "the pipeline of release %s changed", id)
		}
		ev, err := fn(&r, pl.Stages[r.Stage])
		if err != nil {
			return r, err
		}
		r.UpdatedAt = m.cfg.Now()
		err = m.cfg.Store.SaveRelease(ctx, &r, ev)
		if slipway.ErrorCode(err) == slipway.ECONFLICT {
			continue
		}
		if err != nil {
			return slipway.Release{}, err
		}
		m.workers.Wake(id, nil)
		return r, nil
	}
	return slipway.Release{}, slipway.Errorf(slipway.ECONFLICT, "release %s kept changing; try again", id)
}

// checkNewRelease refuses a bad release request.
func checkNewRelease(nr slipway.NewRelease) error {
	var details []string
	if err := validate.NameProblem(nr.App); err != "" {
		details = append(details, "app: "+err)
	}
	switch {
	case nr.Version == "":
		details = append(details, "version: required, like v2 or a commit")
	case len(nr.Version) > slipway.MaxReleaseVersionLength:
		details = append(details, fmt.Sprintf("version: %d bytes; use at most %d", len(nr.Version), slipway.MaxReleaseVersionLength))
	case strings.IndexFunc(nr.Version, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		details = append(details, fmt.Sprintf("version: %q has spaces or control characters", nr.Version))
	}
	for name, v := range map[string]string{"source.commit": nr.Source.Commit, "source.url": nr.Source.URL, "source.trigger": nr.Source.Trigger} {
		if len(v) > maxSourceField || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			details = append(details, name+": at most 1024 printable characters")
		}
	}
	if len(nr.Reason) > maxReason {
		details = append(details, fmt.Sprintf("reason: %d bytes; use at most %d", len(nr.Reason), maxReason))
	}
	if len(details) == 0 {
		return nil
	}
	return &slipway.Error{Code: slipway.EINVALID, Message: fmt.Sprintf("%d errors in the release", len(details)), Details: details}
}
