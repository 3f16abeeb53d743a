package delivery

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"slipway.dev/slipway"
)

// PlanPipelines says what applying ps changes, changing nothing. It refuses (EINVALID) a
// pipeline that lists an app another stored pipeline carries.
func (m *Manager) PlanPipelines(ctx context.Context, ps []slipway.Pipeline) ([]slipway.PlanChange, error) {
	stored, err := m.cfg.Store.Pipelines(ctx)
	if err != nil {
		return nil, err
	}
	return planPipelines(stored, ps)
}

// ApplyPipelines creates and updates ps (one transaction, with an event each) and returns
// what changed. A release on its way keeps going by the pipeline's new stages only when
// their names are the same; otherwise it stops where it is.
func (m *Manager) ApplyPipelines(ctx context.Context, ps []slipway.Pipeline, opts slipway.ApplyOptions) ([]slipway.PlanChange, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.unlock()
	stored, err := m.cfg.Store.Pipelines(ctx)
	if err != nil {
		return nil, err
	}
	changes, err := planPipelines(stored, ps)
	if err != nil {
		return nil, err
	}
	var put []slipway.Pipeline
	var events []slipway.Event
	now := m.cfg.Now()
	actor := opts.Actor
	if actor == "" {
		actor = "unknown"
	}
	reason := opts.Reason
	if reason == "" {
		reason = "apply"
	}
	for i, ch := range changes {
		if ch.Action == slipway.ActionUnchanged {
			continue
		}
		put = append(put, ps[i])
		events = append(events, slipway.Event{Time: now, Kind: slipway.EventPipelineApplied, Actor: actor, Reason: reason,
			Message: fmt.Sprintf("pipeline %s %sd: %d stages for %v", ps[i].Name, ch.Action, len(ps[i].Stages), ps[i].Apps)})
	}
	if len(put) > 0 {
		if err := m.cfg.Store.PutPipelines(ctx, put, events); err != nil {
			return nil, err
		}
		if err := m.loadPipelines(ctx); err != nil {
			return nil, err
		}
		if err := m.resync(ctx); err != nil {
			m.log.Warn("release resync after a pipeline change failed", "err", err)
		}
	}
	return changes, nil
}

// planPipelines returns one change per pipeline of ps, in their order.
func planPipelines(stored, ps []slipway.Pipeline) ([]slipway.PlanChange, error) {
	byName := map[string]slipway.Pipeline{}
	owner := map[string]string{}
	for _, p := range stored {
		byName[p.Name] = p
		for _, a := range p.Apps {
			owner[a] = p.Name
		}
	}
	declared := map[string]bool{}
	for _, p := range ps {
		declared[p.Name] = true
	}
	var details []string
	changes := make([]slipway.PlanChange, len(ps))
	for i, p := range ps {
		for _, a := range p.Apps {
			if o, ok := owner[a]; ok && o != p.Name && !declared[o] {
				details = append(details, fmt.Sprintf("Pipeline/%s: spec.apps: app %s is carried by pipeline %s; an app is in one pipeline", p.Name, a, o))
			}
		}
		ch := slipway.PlanChange{Kind: slipway.KindPipeline, Name: p.Name, Action: slipway.ActionCreate}
		if old, ok := byName[p.Name]; ok {
			ch.Action = slipway.ActionUnchanged
			if fields := slipway.ChangedFields(old, p); len(fields) > 0 {
				ch.Action, ch.Fields = slipway.ActionUpdate, fields
			}
		}
		changes[i] = ch
	}
	if len(details) > 0 {
		return nil, &slipway.Error{Code: slipway.EINVALID, Message: fmt.Sprintf("%d errors in the set", len(details)), Details: details}
	}
	return changes, nil
}

// Pipelines lists the pipelines, by name.
func (m *Manager) Pipelines(ctx context.Context) ([]slipway.Pipeline, error) {
	return m.cfg.Store.Pipelines(ctx)
}

// PipelineStatus says, per stage of pipeline name, which release passed it last, which is in
// it and what it waits for, and which are still to come.
func (m *Manager) PipelineStatus(ctx context.Context, name string) (slipway.PipelineStatus, error) {
	ps, err := m.cfg.Store.Pipelines(ctx)
	if err != nil {
		return slipway.PipelineStatus{}, err
	}
	i := slices.IndexFunc(ps, func(p slipway.Pipeline) bool { return p.Name == name })
	if i < 0 {
		return slipway.PipelineStatus{}, slipway.Errorf(slipway.ENOTFOUND, "pipeline %s does not exist", name)
	}
	pl := ps[i]
	out := slipway.PipelineStatus{Pipeline: pl, Stages: make([]slipway.StageStatus, len(pl.Stages))}
	for j, st := range pl.Stages {
		out.Stages[j] = slipway.StageStatus{Name: st.Name, Environments: st.Environments}
	}
	recent, err := m.cfg.Store.Releases(ctx, "", 500)
	if err != nil {
		return slipway.PipelineStatus{}, err
	}
	// Oldest first, so that the queues come out in order and the newest passed wins.
	sort.SliceStable(recent, func(a, b int) bool { return recent[a].CreatedAt.Before(recent[b].CreatedAt) })
	for _, r := range recent {
		if r.Pipeline != name || !sameStages(pl, r) {
			continue
		}
		for j := range pl.Stages {
			rs := r.Stages[j]
			ref := slipway.ReleaseRef{ID: r.ID, App: r.App, Version: r.Version, State: rs.State}
			s := &out.Stages[j]
			switch {
			case rs.State == slipway.StagePassed:
				s.Passed = &ref
			case r.Phase.Terminal():
			case j == r.Stage:
				s.Current, s.Waiting = &ref, rs.Waiting
			case j > r.Stage:
				s.Queue = append(s.Queue, ref)
			}
		}
	}
	return out, nil
}
