package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
)

var _ slipway.Deployer = (*Fleet)(nil)

// Plan returns what Apply would change, changing nothing.
func (f *Fleet) Plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	if !spans(s) {
		return f.PlanIn(ctx, slipway.DefaultEnvironment, f.cfg.Default(), s, opts)
	}
	f.change.Lock()
	defer f.change.Unlock()
	p, _, err := f.planLocked(ctx, s, opts)
	return p, err
}

// Apply applies a set to the server's environments. A set of the default environment's
// documents alone goes to its engine as it is. A set that declares environments or has apps
// in other environments is checked whole first — every Environment document, and each
// environment's apps by its engine's plan (or, for an environment the set creates, by the
// checks its engine would make) — and nothing changes when any part is refused. Then the
// environments are created or updated (each new one started), and each environment's apps
// applied by its own engine, the default environment's first, then by name. Only a failure
// of the store between two environments' commits can leave the earlier ones applied; the
// error then names them.
//
// Templates go with the apps to each environment the set has apps in; flag sets go to the
// default environment. --prune works on one environment at a time.
func (f *Fleet) Apply(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	if !spans(s) {
		return f.ApplyIn(ctx, slipway.DefaultEnvironment, f.cfg.Default(), s, opts)
	}
	if len(f.setClaims(s)) > 0 {
		f.addresses.Lock()
		defer f.addresses.Unlock()
	}
	p, sp, deployers, err := f.prepare(ctx, s, opts)
	if err != nil {
		return slipway.Plan{}, err
	}
	out := slipway.Plan{Changes: []slipway.PlanChange{}}
	for _, ch := range p.Changes {
		if ch.Kind == slipway.KindEnvironment {
			out.Changes = append(out.Changes, ch)
		}
	}
	if len(sp.pipelines) > 0 {
		pcs, err := f.cfg.Pipelines.ApplyPipelines(ctx, sp.pipelines, opts)
		if err != nil {
			return slipway.Plan{}, err
		}
		out.Changes = append(out.Changes, pcs...)
	}
	if len(sp.notifications) > 0 {
		ncs, err := f.cfg.Notifications.ApplyNotifications(ctx, sp.notifications, opts)
		if err != nil {
			return slipway.Plan{}, err
		}
		out.Changes = append(out.Changes, ncs...)
	}
	// Each environment's engine applies its apps under its own lock: the fleet's is not
	// held, so that one environment's apply never waits on another's (but for a set whose
	// apps take traffic addresses on the local target: see addresses.go).
	var applied []string
	for _, name := range sp.order {
		gp, err := deployers[name].Apply(ctx, sp.groups[name], opts)
		if err != nil {
			if len(applied) > 0 {
				err = fmt.Errorf("environment %s: %w (environments %s applied before it stay applied; apply the set again)", name, err, strings.Join(applied, ", "))
			} else if name != slipway.DefaultEnvironment {
				err = fmt.Errorf("environment %s: %w", name, err)
			}
			return slipway.Plan{}, err
		}
		out.Changes = append(out.Changes, stamp(gp.Changes, name)...)
		applied = append(applied, name)
	}
	return out, nil
}

// prepare checks and plans s, then creates and updates its environments, holding f.change;
// it returns the deployer of each environment s has documents for.
func (f *Fleet) prepare(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, *split, map[string]slipway.Deployer, error) {
	f.change.Lock()
	defer f.change.Unlock()
	p, sp, err := f.planLocked(ctx, s, opts)
	if err != nil {
		return slipway.Plan{}, nil, nil, err
	}
	f.mu.Lock()
	held := f.held
	f.mu.Unlock()
	if held && len(sp.envs) > 0 {
		return slipway.Plan{}, nil, nil, slipway.Errorf(slipway.EUNAVAILABLE, "the server is restarting; apply the environments again in a moment")
	}
	if err := f.putLocked(ctx, sp, opts); err != nil {
		return slipway.Plan{}, nil, nil, err
	}
	envs := f.snapshot()
	deployers := map[string]slipway.Deployer{}
	for _, name := range sp.order {
		if name == slipway.DefaultEnvironment {
			deployers[name] = f.cfg.Default()
			continue
		}
		e, ok := envs[name]
		if !ok || e.rt == nil { // the fleet closed meanwhile
			return slipway.Plan{}, nil, nil, slipway.Errorf(slipway.EUNAVAILABLE, "the server is stopping")
		}
		deployers[name] = e.rt.Deployer()
	}
	return p, sp, deployers, nil
}

// spans reports whether s is more than the default environment's documents.
func spans(s slipway.Set) bool {
	if len(s.Environments) > 0 || len(s.Pipelines) > 0 || len(s.Notifications) > 0 {
		return true
	}
	for _, a := range s.Apps {
		if a.EnvironmentName() != slipway.DefaultEnvironment {
			return true
		}
	}
	return false
}

// split is a set cut by environment.
type split struct {
	// envs are the Environment documents that create or change one.
	envs []slipway.Environment
	// created names those that create one.
	created map[string]bool
	// pipelines and notifications are the server's documents, applied after the
	// environments.
	pipelines     []slipway.Pipeline
	notifications []slipway.Notification
	// groups are each environment's documents; order is the order they apply in.
	groups map[string]slipway.Set
	order  []string
}

// planLocked checks s whole and plans it; f.change is held.
func (f *Fleet) planLocked(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, *split, error) {
	envs := f.snapshot()
	sp := &split{created: map[string]bool{}, groups: map[string]slipway.Set{}}
	p := slipway.Plan{Changes: []slipway.PlanChange{}}
	var details []string
	declared := map[string]slipway.Environment{}
	refused := map[string]bool{}
	var invalid *slipway.Error
	if errors.As(engine.CheckEnvironments(s.Environments), &invalid) {
		details = append(details, invalid.Details...)
	}
	for _, env := range s.Environments {
		if invalid != nil && (slipway.ValidEnvironmentName(env.Name) != nil || slipway.RunField(env.Target.Kind) == "") {
			refused[env.Name] = true // said above
			continue
		}
		ch, problem := f.planEnvironment(envs, env)
		if problem != "" {
			details = append(details, "Environment/"+env.Name+": "+problem)
			refused[env.Name] = true
			continue
		}
		declared[env.Name] = env
		p.Changes = append(p.Changes, ch)
		if ch.Action != slipway.ActionUnchanged {
			sp.envs = append(sp.envs, env)
			sp.created[env.Name] = ch.Action == slipway.ActionCreate
		}
	}
	for _, a := range s.Apps {
		name := a.EnvironmentName()
		g := sp.groups[name]
		g.Apps = append(g.Apps, a)
		sp.groups[name] = g
		if _, ok := declared[name]; ok || refused[name] || name == slipway.DefaultEnvironment {
			continue // a refused environment's refusal says why its apps cannot go
		}
		if _, ok := envs[name]; !ok {
			details = append(details, fmt.Sprintf("App/%s: metadata.environment: environment %s does not exist; declare it (kind: Environment) or use one of: %s",
				a.Name, name, strings.Join(append([]string{slipway.DefaultEnvironment}, names(envs)...), ", ")))
		}
	}
	details = append(details, f.checkPipelines(s.Pipelines, declared, envs)...)
	if opts.Prune {
		details = append(details, "--prune works on one environment at a time: apply each environment's apps with -e NAME --prune, and Environment documents without --prune")
	}
	if len(details) > 0 {
		return slipway.Plan{}, nil, &slipway.Error{Code: slipway.EINVALID, Message: errorsInSet(len(details)), Details: details}
	}
	// Templates go with the apps; the default environment also takes the flag sets, and
	// the templates when no environment has apps.
	def := sp.groups[slipway.DefaultEnvironment]
	def.FlagSets = s.FlagSets
	for name, g := range sp.groups {
		g.Templates = s.Templates
		sp.groups[name] = g
	}
	if len(def.Apps) > 0 || len(sp.groups) == 0 {
		def.Templates = s.Templates
	}
	if len(def.Apps)+len(def.FlagSets)+len(def.Templates) > 0 {
		sp.groups[slipway.DefaultEnvironment] = def
	} else {
		delete(sp.groups, slipway.DefaultEnvironment)
	}
	sp.order = slices.Sorted(maps.Keys(sp.groups))
	if i := slices.Index(sp.order, slipway.DefaultEnvironment); i > 0 {
		sp.order = append([]string{slipway.DefaultEnvironment}, slices.Delete(sp.order, i, i+1)...)
	}
	if len(s.Pipelines) > 0 {
		pcs, err := f.cfg.Pipelines.PlanPipelines(ctx, s.Pipelines)
		if err != nil {
			return slipway.Plan{}, nil, err
		}
		p.Changes = append(p.Changes, pcs...)
		sp.pipelines = s.Pipelines
	}
	if len(s.Notifications) > 0 {
		if f.cfg.Notifications == nil {
			return slipway.Plan{}, nil, slipway.Errorf(slipway.EINVALID, "Notification/%s: this server sends no notifications", s.Notifications[0].Name)
		}
		ncs, err := f.cfg.Notifications.PlanNotifications(ctx, s.Notifications)
		if err != nil {
			return slipway.Plan{}, nil, err
		}
		p.Changes = append(p.Changes, ncs...)
		sp.notifications = s.Notifications
	}
	var errs []error
	for _, name := range sp.order {
		g := sp.groups[name]
		var gp slipway.Plan
		var err error
		switch e, ok := envs[name]; {
		case name == slipway.DefaultEnvironment:
			gp, err = f.cfg.Default().Plan(ctx, g, opts)
		case ok && e.rt == nil:
			err = e.unavailable()
		case ok:
			gp, err = e.rt.Deployer().Plan(ctx, g, opts)
		default: // created by this set: nothing of it stored yet
			err = engine.Check(g, name, declared[name].Target.Kind, f.cfg.MaxReplicas)
			gp = createPlan(g)
		}
		if err != nil {
			errs = append(errs, inEnvironment(name, err))
			continue
		}
		p.Changes = append(p.Changes, stamp(gp.Changes, name)...)
	}
	if len(errs) > 0 {
		return slipway.Plan{}, nil, joinErrors(errs)
	}
	targets := map[string]string{}
	for name, env := range declared {
		targets[name] = env.Target.Kind
	}
	apps := map[string][]slipway.App{}
	for name, g := range sp.groups {
		apps[name] = g.Apps
	}
	if err := f.checkAddresses(ctx, envs, apps, targets, false); err != nil {
		return slipway.Plan{}, nil, err
	}
	return p, sp, nil
}

// planEnvironment says what applying env does to the fleet's environments envs, or why it
// cannot be applied.
func (f *Fleet) planEnvironment(envs map[string]*entry, env slipway.Environment) (slipway.PlanChange, string) {
	ch := slipway.PlanChange{Kind: slipway.KindEnvironment, Name: env.Name, Action: slipway.ActionCreate}
	if env.Name == slipway.DefaultEnvironment {
		return ch, "the default environment is the server's own (slipway server --platform " + f.cfg.DefaultTarget + "); it takes no Environment document, so name yours otherwise"
	}
	if !slices.Contains(f.cfg.Targets, env.Target.Kind) {
		return ch, fmt.Sprintf("spec.target.kind: this server cannot run environments on %s targets; use one of: %s", env.Target.Kind, strings.Join(f.cfg.Targets, ", "))
	}
	old, ok := envs[env.Name]
	if !ok {
		return ch, ""
	}
	if old.env.Target.Kind != env.Target.Kind {
		return ch, fmt.Sprintf("spec.target.kind: environment %s runs on %s; its target cannot change to %s (its apps run there)", env.Name, old.env.Target.Kind, env.Target.Kind)
	}
	ch.Action = slipway.ActionUnchanged
	if !maps.Equal(old.env.Labels, env.Labels) {
		ch.Action, ch.Fields = slipway.ActionUpdate, []string{"labels"}
	}
	return ch, ""
}

// putLocked creates and updates sp's environments: each new one is started, then all are
// stored in one transaction with their events; nothing is kept when either fails. f.change
// is held; f.mu only to change the fleet's environments at the end.
func (f *Fleet) putLocked(ctx context.Context, sp *split, opts slipway.ApplyOptions) error {
	if len(sp.envs) == 0 {
		return nil
	}
	started := map[string]Runtime{}
	closeStarted := func() {
		for _, rt := range started {
			_ = rt.Close()
		}
	}
	var events []slipway.Event
	actor := opts.Actor
	if actor == "" {
		actor = "unknown"
	}
	reason := opts.Reason
	if reason == "" {
		reason = "apply"
	}
	for _, env := range sp.envs {
		kind, verb := slipway.EventEnvironmentUpdated, "updated"
		if sp.created[env.Name] {
			rt, err := f.cfg.Start(f.ctx, env, false)
			if err != nil {
				closeStarted()
				f.cfg.Log.Error("environment could not start", "environment", env.Name, "target", env.Target.Kind, "err", err)
				return slipway.Errorf(slipway.EUNAVAILABLE, "environment %s could not start: %s; nothing was changed", env.Name, startError(err))
			}
			started[env.Name] = rt
			kind, verb = slipway.EventEnvironmentCreated, "created"
		}
		events = append(events, slipway.Event{Time: f.cfg.Now(), Kind: kind, Actor: actor, Reason: reason,
			Message: fmt.Sprintf("environment %s %s (target %s)", env.Name, verb, env.Target.Kind)})
	}
	if err := f.cfg.Store.PutEnvironments(ctx, sp.envs, events); err != nil {
		closeStarted()
		return err
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		closeStarted()
		return slipway.Errorf(slipway.EUNAVAILABLE, "the server is stopping; the environments are stored and start with it")
	}
	defer f.mu.Unlock()
	for _, env := range sp.envs {
		if rt, ok := started[env.Name]; ok {
			f.envs[env.Name] = &entry{env: env, rt: rt}
			f.cfg.Log.Info("environment started", "environment", env.Name, "target", env.Target.Kind)
			continue
		}
		old := f.envs[env.Name]
		f.envs[env.Name] = &entry{env: env, rt: old.rt, err: old.err}
	}
	return nil
}

// createPlan is the plan of g in an environment that holds nothing yet.
func createPlan(g slipway.Set) slipway.Plan {
	p := slipway.Plan{}
	for _, t := range g.Templates {
		p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindAnalysisTemplate, Name: t.Name, Action: slipway.ActionCreate})
	}
	apps := slices.Clone(g.Apps)
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	for _, a := range apps {
		p.Changes = append(p.Changes, slipway.PlanChange{Kind: slipway.KindApp, Name: a.Name, Action: slipway.ActionCreate,
			ToRevision: a.RevisionSpec().Hash(), ToReplicas: a.Replicas})
	}
	return p
}

// stamp marks changes with environment name (none for the default environment).
func stamp(changes []slipway.PlanChange, name string) []slipway.PlanChange {
	if name == slipway.DefaultEnvironment {
		return changes
	}
	out := slices.Clone(changes)
	for i := range out {
		out[i].Environment = name
	}
	return out
}

// inEnvironment names environment name in err's message and details, keeping its code.
func inEnvironment(name string, err error) error {
	var e *slipway.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("environment %s: %w", name, err)
	}
	out := &slipway.Error{Code: e.Code, Message: "environment " + name + ": " + e.Message}
	for _, d := range e.Details {
		out.Details = append(out.Details, "environment "+name+": "+d)
	}
	return out
}

// joinErrors returns one error for several environments' refusals: EINVALID with every
// detail when all are, else the first.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	out := &slipway.Error{Code: slipway.EINVALID}
	for _, err := range errs {
		var e *slipway.Error
		if !errors.As(err, &e) || e.Code != slipway.EINVALID {
			return err
		}
		if len(e.Details) == 0 {
			out.Details = append(out.Details, e.Message)
		}
		out.Details = append(out.Details, e.Details...)
	}
	out.Message = errorsInSet(len(out.Details))
	return out
}

// checkPipelines refuses Pipeline documents this server cannot take: without a pipeline
// manager, or naming an environment it does not serve and the set does not declare.
func (f *Fleet) checkPipelines(ps []slipway.Pipeline, declared map[string]slipway.Environment, envs map[string]*entry) []string {
	var details []string
	for _, p := range ps {
		if f.cfg.Pipelines == nil {
			details = append(details, "Pipeline/"+p.Name+": this server runs no pipelines")
			continue
		}
		for i, st := range p.Stages {
			for j, env := range st.Environments {
				_, known := envs[env]
				_, decl := declared[env]
				if !known && !decl && env != slipway.DefaultEnvironment {
					details = append(details, fmt.Sprintf("Pipeline/%s: spec.stages[%d].environments[%d]: environment %s does not exist; declare it (kind: Environment) or use one of: %s",
						p.Name, i, j, env, strings.Join(append([]string{slipway.DefaultEnvironment}, names(envs)...), ", ")))
				}
			}
		}
	}
	return details
}

// startError is what a runtime's start failure says to the client: a slipway error's
// message, or the error itself (the operator fixes what it names, a directory or a data
// plane, on the server's machine).
func startError(err error) string {
	var e *slipway.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// errorsInSet is the message of a refusal of a set with n details.
func errorsInSet(n int) string {
	if n == 1 {
		return "1 error in the set"
	}
	return fmt.Sprintf("%d errors in the set", n)
}
