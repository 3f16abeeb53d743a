package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

// maxAttempts bounds the retries of an operation whose optimistic write conflicted.
const maxAttempts = 8

// Plan returns what Apply would change, changing nothing.
func (e *Engine) Plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	p, _, err := e.plan(ctx, s, opts)
	return p, err
}

// Apply validates s, commits every change it implies in one transaction, then starts the
// rollouts and removals that follow. Nothing changes when s is invalid.
func (e *Engine) Apply(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	for range maxAttempts {
		p, c, err := e.plan(ctx, s, opts)
		if err != nil {
			return slipway.Plan{}, err
		}
		var changed []string
		for _, ch := range p.Changes {
			if ch.Kind == slipway.KindApp && ch.Action != slipway.ActionUnchanged {
				changed = append(changed, ch.Name)
			}
		}
		gens := e.generations(changed)
		err = e.commit(ctx, c)
		if isCode(err, slipway.ECONFLICT) {
			continue
		}
		if err != nil {
			return slipway.Plan{}, fmt.Errorf("apply: %w", err)
		}
		if len(c.Templates) > 0 || len(c.DeleteTemplates) > 0 {
			if err := e.loadTemplates(ctx); err != nil {
				return p, err
			}
		}
		if len(c.FlagSets) > 0 || len(c.DeleteFlagSets) > 0 {
			if err := e.flags.Reload(ctx); err != nil {
				return p, err
			}
		}
		// Each changed app's worker carries the change out; for a deleted app it removes what
		// runs (only the app's worker talks to the platform about it, so nothing races). A
		// worker whose app and new rollout were just written starts from them.
		seeds := seedsOf(c)
		for _, name := range changed {
			e.pokeSeeded(name, seeds[name], gens[name])
		}
		return p, nil
	}
	return slipway.Plan{}, slipway.Errorf(slipway.ECONFLICT, "apply: state kept changing; try again")
}

// seedsOf returns, by app, what a committed c leaves its workers to start from: for each app
// c wrote together with a new rollout, the app, that rollout (the app's latest: only Apply
// and rollback create rollouts, one at a time) and the revisions c added.
func seedsOf(c *slipway.Change) map[string]*seed {
	seeds := map[string]*seed{}
	for _, r := range c.Rollouts {
		if r.Version == 1 {
			seeds[r.App] = &seed{latest: r}
		}
	}
	written := make(map[string]bool, len(c.Apps))
	for _, a := range c.Apps {
		if s, ok := seeds[a.Spec.Name]; ok {
			s.st = a
			written[a.Spec.Name] = true
		}
	}
	for app := range seeds {
		if !written[app] {
			delete(seeds, app)
		}
	}
	for _, r := range c.Revisions {
		if s, ok := seeds[r.App]; ok {
			s.revs = append(s.revs, r)
		}
	}
	return seeds
}

// plan computes the plan and the change that carries it out.
func (e *Engine) plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, *slipway.Change, error) {
	store := e.cfg.Store
	if e.templates.Load() == nil {
		if err := e.loadTemplates(ctx); err != nil {
			return slipway.Plan{}, nil, err
		}
	}
	tmpls := e.templateMap()
	known := func(name string) bool {
		if opts.Prune {
			return false
		}
		_, ok := tmpls[name]
		return ok
	}
	if err := validate.Set(s, known); err != nil {
		return slipway.Plan{}, nil, err
	}
	if err := e.checkLimits(s); err != nil {
		return slipway.Plan{}, nil, err
	}
	// The store holds this environment's apps only: an app's environment is implicit there,
	// so that the same app applied with and without metadata.environment is the same.
	if len(s.Apps) > 0 {
		apps := make([]slipway.App, len(s.Apps))
		for i, a := range s.Apps {
			a.Environment = ""
			apps[i] = a
		}
		s.Apps = apps
	}
	now := e.cfg.Now()
	actor := opts.Actor
	if actor == "" {
		actor = "unknown"
	}
	// Read every app only when pruning; otherwise just the declared ones, so that applying
	// one app costs the same however many the server holds.
	var apps []slipway.AppState
	if opts.Prune {
		all, err := store.Apps(ctx)
		if err != nil {
			return slipway.Plan{}, nil, err
		}
		apps = all
	} else {
		for _, a := range s.Apps {
			st, err := store.App(ctx, a.Name)
			if isCode(err, slipway.ENOTFOUND) {
				continue
			}
			if err != nil {
				return slipway.Plan{}, nil, err
			}
			apps = append(apps, st)
		}
	}
	cur := map[string]slipway.AppState{}
	for _, a := range apps {
		cur[a.Spec.Name] = a
	}
	p := slipway.Plan{Changes: []slipway.PlanChange{}}
	c := &slipway.Change{}
	ev := func(app, rollout, kind, msg string) {
		c.Events = append(c.Events, slipway.Event{Time: now, App: app, Rollout: rollout, Kind: kind, Actor: actor, Message: msg, Reason: "apply"})
	}

	// Templates first: a rollout started below may use them.
	declaredT := map[string]bool{}
	for _, t := range sorted(s.Templates, func(t slipway.AnalysisTemplate) string { return t.Name }) {
		declaredT[t.Name] = true
		ch := slipway.PlanChange{Kind: slipway.KindAnalysisTemplate, Name: t.Name, Action: slipway.ActionUnchanged}
		old, ok := tmpls[t.Name]
		switch {
		case !ok:
			ch.Action = slipway.ActionCreate
		case len(slipway.ChangedFields(old, t)) > 0:
			ch.Action, ch.Fields = slipway.ActionUpdate, slipway.ChangedFields(old, t)
		}
		if ch.Action != slipway.ActionUnchanged {
			c.Templates = append(c.Templates, t)
			ev("", "", slipway.EventTemplateApplied, fmt.Sprintf("template %s %sd", t.Name, ch.Action))
		}
		p.Changes = append(p.Changes, ch)
	}

	if err := e.flags.Plan(ctx, s, opts, &p, c, actor, now); err != nil {
		return slipway.Plan{}, nil, err
	}

	declared := map[string]bool{}
	for _, a := range sorted(s.Apps, func(a slipway.App) string { return a.Name }) {
		declared[a.Name] = true
		ch, err := e.planApp(ctx, a, cur, c, actor, now)
		if err != nil {
			return slipway.Plan{}, nil, err
		}
		p.Changes = append(p.Changes, ch)
	}

	if opts.Prune {
		for _, a := range apps {
			if declared[a.Spec.Name] {
				continue
			}
			c.DeleteApps = append(c.DeleteApps, a.Spec.Name)
			ev(a.Spec.Name, "", slipway.EventAppDeleted, "app "+a.Spec.Name+" deleted (pruned)")
			p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindApp, Name: a.Spec.Name, Action: slipway.ActionDelete,
				FromRevision: a.Stable, FromReplicas: a.Spec.Replicas})
		}
		for _, name := range sortedKeys(tmpls) {
			if declaredT[name] {
				continue
			}
			c.DeleteTemplates = append(c.DeleteTemplates, name)
			ev("", "", slipway.EventTemplateDeleted, "template "+name+" deleted (pruned)")
			p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindAnalysisTemplate, Name: name, Action: slipway.ActionDelete})
		}
	}
	// The client's reason, when it gives one, replaces the word "apply" on what the apply
	// itself recorded (not on what it caused, such as a superseded rollout's abort).
	if opts.Reason != "" {
		for i := range c.Events {
			if c.Events[i].Actor == actor && c.Events[i].Reason == "apply" {
				c.Events[i].Reason = opts.Reason
			}
		}
		for i := range c.FlagSets {
			if c.FlagSets[i].Reason == "apply" {
				c.FlagSets[i].Reason = opts.Reason
			}
		}
	}
	return p, c, nil
}

// planApp adds to c what applying app a implies, and says what that is.
func (e *Engine) planApp(ctx context.Context, a slipway.App, cur map[string]slipway.AppState, c *slipway.Change, actor string, now time.Time) (slipway.PlanChange, error) {
	ev := func(rollout, kind, msg string) {
		c.Events = append(c.Events, slipway.Event{Time: now, App: a.Name, Rollout: rollout, Kind: kind, Actor: actor, Message: msg, Reason: "apply"})
	}
	hash := a.RevisionSpec().Hash()
	ch := slipway.PlanChange{Kind: slipway.KindApp, Name: a.Name, Action: slipway.ActionUnchanged, ToRevision: hash, ToReplicas: a.Replicas}
	old, exists := cur[a.Name]
	if !exists {
		rev := slipway.Revision{App: a.Name, ID: hash, Number: 1, Version: a.Version, Spec: a.RevisionSpec(), CreatedAt: now}
		ro := NewRollout(a, 1, slipway.Revision{}, rev, now)
		c.Apps = append(c.Apps, slipway.AppState{Spec: a, CreatedAt: now, UpdatedAt: now})
		c.Revisions = append(c.Revisions, rev)
		c.Rollouts = append(c.Rollouts, ro)
		ev("", slipway.EventAppCreated, "app "+a.Name+" created")
		ev(ro.ID, slipway.EventRolloutStarted, fmt.Sprintf("first rollout of revision %s (%s)", hash, orNone(a.Version)))
		ch.Action, ch.Rollout = slipway.ActionCreate, ro.ID
		return ch, nil
	}
	ch.FromRevision, ch.FromReplicas = old.Stable, old.Spec.Replicas
	latest, err := latestRollout(ctx, e.cfg.Store, a.Name)
	if err != nil {
		return ch, err
	}
	target := old.Stable
	if latest != nil {
		target = latest.To
		ch.FromRevision = latest.To
	}
	fields := slipway.ChangedFields(old.Spec, a)
	if len(fields) > 0 {
		st := old
		st.Spec, st.UpdatedAt = a, now
		c.Apps = append(c.Apps, st)
	}
	switch {
	case hash != target:
		ch.Action = slipway.ActionNewRevision
		if err := e.planRevision(ctx, a, old, latest, hash, c, &ch, actor, now); err != nil {
			return ch, err
		}
	case len(fields) == 1 && fields[0] == "replicas":
		ch.Action = slipway.ActionScale
		ev("", slipway.EventAppScaled, fmt.Sprintf("scaled from %d to %d instances", old.Spec.Replicas, a.Replicas))
	case len(fields) > 0:
		ch.Action = slipway.ActionUpdate
		ev("", slipway.EventAppUpdated, "updated "+strings.Join(fields, ", "))
	}
	ch.Fields = fields
	return ch, nil
}

// planRevision starts a rollout to revision hash, superseding the app's active rollout.
func (e *Engine) planRevision(ctx context.Context, a slipway.App, old slipway.AppState, latest *slipway.Rollout, hash string, c *slipway.Change, ch *slipway.PlanChange, actor string, now time.Time) error {
	revs, err := e.cfg.Store.Revisions(ctx, a.Name)
	if err != nil {
		return err
	}
	byID := map[string]slipway.Revision{}
	next := 1
	for _, r := range revs {
		byID[r.ID] = r
		next = max(next, r.Number+1)
	}
	rev, known := byID[hash]
	if !known {
		rev = slipway.Revision{App: a.Name, ID: hash, Number: next, Version: a.Version, Spec: a.RevisionSpec(), CreatedAt: now}
		c.Revisions = append(c.Revisions, rev)
		c.Events = append(c.Events, slipway.Event{Time: now, App: a.Name, Kind: slipway.EventRevisionCreated, Actor: actor,
			Message: fmt.Sprintf("revision %s (#%d, %s) created", hash, rev.Number, orNone(a.Version)), Reason: "apply"})
	}
	number := 1
	if latest != nil {
		number = latest.Number + 1
	}
	id := fmt.Sprintf("%s-%d", a.Name, number)
	if err := e.supersede(ctx, latest, id, c, actor, now); err != nil {
		return err
	}
	if hash == old.Stable {
		// Declaring the stable revision again ends whatever rollout was under way.
		return nil
	}
	ro := NewRollout(a, number, byID[old.Stable], rev, now)
	c.Rollouts = append(c.Rollouts, ro)
	c.Events = append(c.Events, newEvent(ro, slipway.EventRolloutStarted, actor,
		fmt.Sprintf("%s rollout from %s to %s (%s)", ro.Strategy, orNone(ro.From), ro.To, orNone(ro.ToVersion)), "apply", now))
	ch.Rollout = ro.ID
	return nil
}

// supersede ends the app's latest rollout, if it is still active, in favour of rollout by.
func (e *Engine) supersede(ctx context.Context, latest *slipway.Rollout, by string, c *slipway.Change, actor string, now time.Time) error {
	if latest == nil || !latest.Active() {
		return nil
	}
	r := *latest
	var eff Effects
	if r.Phase.Terminal() {
		r.ScaledDown = true
	} else {
		abort(&r, &eff, "superseded by rollout "+by, actor, now)
		r.SupersededBy = by
		eff.Events[len(eff.Events)-1].Kind = slipway.EventRolloutSuperseded
	}
	r.UpdatedAt = now
	c.Rollouts = append(c.Rollouts, r)
	c.Events = append(c.Events, eff.Events...)
	for _, id := range eff.StopRuns {
		run, err := e.cfg.Store.AnalysisRun(ctx, id)
		if isCode(err, slipway.ENOTFOUND) {
			continue
		}
		if err != nil {
			return err
		}
		if !run.Phase.Terminal() {
			terminate(&run, eff.StopReason, now)
			c.Runs = append(c.Runs, run)
		}
	}
	return nil
}

// Operate carries out a manual operation on an app's latest rollout.
func (e *Engine) Operate(ctx context.Context, op slipway.Operation) (slipway.Rollout, error) {
	if op.Kind == slipway.OpRollback {
		return e.rollback(ctx, op)
	}
	for range maxAttempts {
		st, err := e.cfg.Store.App(ctx, op.App)
		if err != nil {
			return slipway.Rollout{}, err
		}
		latest, err := latestRollout(ctx, e.cfg.Store, op.App)
		if err != nil {
			return slipway.Rollout{}, err
		}
		if latest == nil {
			return slipway.Rollout{}, slipway.Errorf(slipway.ENOTFOUND, "app %s has no rollout", op.App)
		}
		if op.Kind == slipway.OpRetry && latest.From != st.Stable {
			return slipway.Rollout{}, slipway.Errorf(slipway.ECONFLICT, "rollout %s started from %s but the stable revision is now %s; apply again instead", latest.ID, orNone(latest.From), orNone(st.Stable))
		}
		runs, err := loadRuns(ctx, e.cfg.Store, *latest)
		if err != nil {
			return slipway.Rollout{}, err
		}
		now := e.cfg.Now()
		next, eff, err := Operate(*latest, op, st.Spec.Replicas, runs, now)
		if err != nil {
			return slipway.Rollout{}, err
		}
		c, err := e.transition(ctx, st, next, eff, now)
		if isCode(err, slipway.ECONFLICT) {
			continue
		}
		if err != nil {
			return slipway.Rollout{}, err
		}
		e.Poke(op.App)
		return c.Rollouts[0], nil
	}
	return slipway.Rollout{}, slipway.Errorf(slipway.ECONFLICT, "%s %s: state kept changing; try again", op.Kind, op.App)
}

// rollback starts a rollout back to an earlier revision: by default the one that was stable
// before the current stable one (or, while a rollout runs, the current stable one: the
// rollout is aborted). A rollback to a revision that was stable before skips steps and
// analysis unless op.WithSteps.
func (e *Engine) rollback(ctx context.Context, op slipway.Operation) (slipway.Rollout, error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	for range maxAttempts {
		st, err := e.cfg.Store.App(ctx, op.App)
		if err != nil {
			return slipway.Rollout{}, err
		}
		history, err := e.cfg.Store.Rollouts(ctx, op.App, 0)
		if err != nil {
			return slipway.Rollout{}, err
		}
		var latest *slipway.Rollout
		if len(history) > 0 {
			latest = &history[0]
		}
		revs, err := e.cfg.Store.Revisions(ctx, op.App)
		if err != nil {
			return slipway.Rollout{}, err
		}
		running := latest != nil && !latest.Phase.Terminal()
		target := ""
		switch {
		case op.To != "":
			rev, err := findRevision(revs, op.To)
			if err != nil {
				return slipway.Rollout{}, err
			}
			target = rev.ID
		case running:
			target = st.Stable
		default:
			for _, r := range history {
				if r.Phase == slipway.PhaseCompleted && r.To == st.Stable && r.From != "" {
					target = r.From
					break
				}
			}
			if target == "" {
				return slipway.Rollout{}, slipway.Errorf(slipway.ECONFLICT, "app %s has no earlier stable revision; name one with --to", op.App)
			}
		}
		if target == "" {
			return slipway.Rollout{}, slipway.Errorf(slipway.ECONFLICT, "app %s has no stable revision to roll back to", op.App)
		}
		if target == st.Stable && !running {
			return slipway.Rollout{}, slipway.Errorf(slipway.ECONFLICT, "revision %s is already stable", target)
		}
		now := e.cfg.Now()
		actor := op.Actor
		if actor == "" {
			actor = "unknown"
		}
		c := &slipway.Change{}
		number := 1
		if latest != nil {
			number = latest.Number + 1
		}
		id := fmt.Sprintf("%s-%d", op.App, number)
		if target == st.Stable {
			// Rolling back to the stable revision is aborting the rollout under way.
			r, eff, err := Operate(*latest, slipway.Operation{Kind: slipway.OpAbort, App: op.App, Actor: actor, Reason: orDefault(op.Reason, "rolled back")}, st.Spec.Replicas, nil, now)
			if err != nil {
				return slipway.Rollout{}, err
			}
			c2, err := e.transition(ctx, st, r, eff, now)
			if isCode(err, slipway.ECONFLICT) {
				continue
			}
			if err != nil {
				return slipway.Rollout{}, err
			}
			e.Poke(op.App)
			return c2.Rollouts[0], nil
		}
		if err := e.supersede(ctx, latest, id, c, actor, now); err != nil {
			return slipway.Rollout{}, err
		}
		byID := map[string]slipway.Revision{}
		for _, r := range revs {
			byID[r.ID] = r
		}
		wasStable := false
		for _, r := range history {
			if r.Phase == slipway.PhaseCompleted && r.To == target {
				wasStable = true
			}
		}
		ro := NewRollout(st.Spec, number, byID[st.Stable], byID[target], now)
		ro.Rollback = true
		ro.SkipAnalysis = wasStable && !op.WithSteps
		c.Rollouts = append(c.Rollouts, ro)
		how := "with steps and analysis"
		if ro.SkipAnalysis {
			how = "skipping steps and analysis (it was stable before)"
		}
		c.Events = append(c.Events, newEvent(ro, slipway.EventRolloutStarted, actor,
			fmt.Sprintf("rollback from %s to %s (%s), %s", orNone(ro.From), ro.To, orNone(ro.ToVersion), how), orDefault(op.Reason, "rollback"), now))
		err = e.commit(ctx, c)
		if isCode(err, slipway.ECONFLICT) {
			continue
		}
		if err != nil {
			return slipway.Rollout{}, err
		}
		e.Poke(op.App)
		for _, r := range c.Rollouts {
			if r.ID == ro.ID {
				return r, nil
			}
		}
	}
	return slipway.Rollout{}, slipway.Errorf(slipway.ECONFLICT, "rollback %s: state kept changing; try again", op.App)
}

// findRevision finds a revision by ID (or a unique ID prefix), number ("3" or "#3") or version label.
func findRevision(revs []slipway.Revision, ref string) (slipway.Revision, error) {
	var found []slipway.Revision
	n, numErr := strconv.Atoi(strings.TrimPrefix(ref, "#"))
	for _, r := range revs {
		if r.ID == ref {
			return r, nil
		}
		if (numErr == nil && r.Number == n) || strings.HasPrefix(r.ID, ref) || r.Version == ref {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return slipway.Revision{}, slipway.Errorf(slipway.ENOTFOUND, "no kept revision matches %q; see `slipway history`", ref)
	}
	return slipway.Revision{}, slipway.Errorf(slipway.EINVALID, "%q matches %d revisions; use the full revision ID", ref, len(found))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func sorted[T any](xs []T, key func(T) string) []T {
	out := append([]T(nil), xs...)
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkLimits refuses a set beyond this server's limits, before anything is planned (Check).
func (e *Engine) checkLimits(s slipway.Set) error {
	return checkSet(s, e.cfg.Environment, e.cfg.Target, e.cfg.MaxReplicas)
}

// Check refuses a set that an engine of environment env (on a target of kind target, with
// at most maxReplicas per app) would refuse, without a store: a set for an environment that
// does not run yet. Templates the set uses must be in it.
func Check(s slipway.Set, env, target string, maxReplicas int) error {
	if err := validate.Set(s, func(string) bool { return false }); err != nil {
		return err
	}
	if maxReplicas <= 0 {
		maxReplicas = slipway.DefaultMaxReplicas
	}
	return checkSet(s, env, target, maxReplicas)
}

// CheckEnvironments refuses Environment documents as slipway validate would: names that are
// no DNS label, bad labels, a missing or unknown target. Those that come through the API
// were never validated from a file.
func CheckEnvironments(envs []slipway.Environment) error {
	if len(envs) == 0 {
		return nil
	}
	return validate.Set(slipway.Set{Environments: envs}, func(string) bool { return false })
}

// checkSet refuses a set beyond the limits: every app's replicas, the canary scale, an
// experiment's replicas and the preview at most max; every app in environment env (an app
// that names none is taken as env's) with the run form its target needs; no Environment
// document.
func checkSet(s slipway.Set, env, target string, max int) error {
	var details []string
	over := func(app, path string, n int) {
		if n > max {
			details = append(details, fmt.Sprintf("App/%s: %s: %d exceeds this server's maximum of %d replicas per app (slipway server --max-replicas)", app, path, n, max))
		}
	}
	if env == "" {
		env = slipway.DefaultEnvironment
	}
	if len(s.Environments) > 0 {
		details = append(details, fmt.Sprintf("Environment/%s: environment %s does not take Environment documents; apply them to the default environment (without -e)", s.Environments[0].Name, env))
	}
	if len(s.Pipelines) > 0 {
		details = append(details, fmt.Sprintf("Pipeline/%s: environment %s does not take Pipeline documents; apply them to the default environment (without -e)", s.Pipelines[0].Name, env))
	}
	if len(s.Notifications) > 0 {
		details = append(details, fmt.Sprintf("Notification/%s: environment %s does not take Notification documents; apply them to the default environment (without -e)", s.Notifications[0].Name, env))
	}
	for _, a := range s.Apps {
		if a.Environment != "" && a.Environment != env {
			details = append(details, fmt.Sprintf("App/%s: metadata.environment: the app is in environment %s; this request is for environment %s (apply it without -e, or with -e %s)", a.Name, a.Environment, env, a.Environment))
		}
		if msg := validate.RunFormProblem(&a, env, target); msg != "" {
			details = append(details, fmt.Sprintf("App/%s: %s", a.Name, msg))
		}
		over(a.Name, "spec.replicas", a.Replicas)
		if bg := a.Strategy.BlueGreen; bg != nil && bg.PreviewReplicas != nil {
			over(a.Name, "spec.strategy.blueGreen.previewReplicas", *bg.PreviewReplicas)
		}
		if c := a.Strategy.Canary; c != nil {
			for i, st := range c.Steps {
				if st.SetCanaryScale != nil && st.SetCanaryScale.Replicas != nil {
					over(a.Name, fmt.Sprintf("spec.strategy.canary.steps[%d].setCanaryScale.replicas", i), *st.SetCanaryScale.Replicas)
				}
				if st.Experiment != nil && st.Experiment.Replicas != nil {
					over(a.Name, fmt.Sprintf("spec.strategy.canary.steps[%d].experiment.replicas", i), *st.Experiment.Replicas)
				}
			}
		}
	}
	if len(details) == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d errors in the set", len(details))
	if len(details) == 1 {
		msg = "1 error in the set"
	}
	return &slipway.Error{Code: slipway.EINVALID, Message: msg, Details: details}
}
