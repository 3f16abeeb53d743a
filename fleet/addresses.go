package fleet

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"

	"slipway.dev/slipway"
)

// On the local target an app's traffic addresses (spec.traffic.listen and preview) are this
// machine's: every local environment's data plane binds its apps' addresses on the same
// host, and only the first to bind one gets it, so an app whose address another local
// environment's app has would look healthy while that other app answered its requests
// (and which one answers could change at each start). A set that gives an app such an
// address is therefore refused, whichever environment's API it comes through; each
// environment's engine checks its own apps among themselves.

// PlanIn is Plan of s by environment env's deployer d (its engine), after the check of the
// traffic addresses its apps take against the other environments'.
func (f *Fleet) PlanIn(ctx context.Context, env string, d slipway.Deployer, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	if err := f.checkAddresses(ctx, f.snapshot(), map[string][]slipway.App{env: s.Apps}, nil, opts.Prune); err != nil {
		return slipway.Plan{}, err
	}
	return d.Plan(ctx, s, opts)
}

// ApplyIn is Apply of s by environment env's deployer d (its engine), after the check of the
// traffic addresses its apps take against the other environments'; the check and the apply
// hold f.addresses, so that two environments' applies cannot take one address at once.
func (f *Fleet) ApplyIn(ctx context.Context, env string, d slipway.Deployer, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	envs, groups := f.snapshot(), map[string][]slipway.App{env: s.Apps}
	if len(f.claims(envs, groups, nil)) > 0 {
		f.addresses.Lock()
		defer f.addresses.Unlock()
	}
	if err := f.checkAddresses(ctx, envs, groups, nil, opts.Prune); err != nil {
		return slipway.Plan{}, err
	}
	return d.Apply(ctx, s, opts)
}

// claim is an address an app has or would take.
type claim struct {
	env, app, field, addr string
}

func (c claim) String() string {
	if c.env == slipway.DefaultEnvironment {
		return "App " + c.app
	}
	return "App " + c.app + " in environment " + c.env
}

// checkAddresses refuses the apps of groups (each environment's apps in a set) that would
// take a traffic address an app of another local environment has, or that the set gives an
// app of another environment. targets are the kinds of targets of environments the set
// creates; prune says the set replaces its environments' apps (those it does not name go).
func (f *Fleet) checkAddresses(ctx context.Context, envs map[string]*entry, groups map[string][]slipway.App, targets map[string]string, prune bool) error {
	ours := f.claims(envs, groups, targets)
	if len(ours) == 0 {
		return nil
	}
	target := func(name string) string { return f.target(envs, targets, name) }
	// The apps of every other local environment, and of the set's environments those the
	// set does not name (unless it prunes them).
	all := ours
	named := map[string]map[string]bool{}
	for name, apps := range groups {
		named[name] = map[string]bool{}
		for _, a := range apps {
			named[name][a.Name] = true
		}
	}
	stored := func(name string, state slipway.StateReader) error {
		// An environment's own apps are its engine's to check; with one environment in the
		// set, its stored apps count for no other.
		if state == nil || target(name) != slipway.TargetLocal || (named[name] != nil && (prune || len(groups) == 1)) {
			return nil
		}
		apps, err := state.Apps(ctx)
		if err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
		for _, a := range apps {
			if !named[name][a.Spec.Name] {
				all = append(all, addressClaims(name, a.Spec)...)
			}
		}
		return nil
	}
	if err := stored(slipway.DefaultEnvironment, f.cfg.DefaultState); err != nil {
		return err
	}
	for _, name := range names(envs) {
		if e := envs[name]; e.rt != nil {
			if err := stored(name, e.rt.State()); err != nil {
				return err
			}
		}
	}
	var details []string
	for _, c := range ours {
		for _, o := range all {
			if o.env == c.env || !sameAddress(c.addr, o.addr) {
				continue
			}
			d := fmt.Sprintf("App/%s: spec.traffic.%s: %s is also the %s address of %s; on the local target every environment's apps share this machine's addresses, so give each app its own",
				c.app, c.field, c.addr, o.field, o)
			if c.env != slipway.DefaultEnvironment {
				d = "environment " + c.env + ": " + d
			}
			if !slices.Contains(details, d) {
				details = append(details, d)
			}
		}
	}
	if len(details) == 0 {
		return nil
	}
	sort.Strings(details)
	return &slipway.Error{Code: slipway.EINVALID, Message: errorsInSet(len(details)), Details: details}
}

// claims are the traffic addresses the apps of groups in local environments take.
func (f *Fleet) claims(envs map[string]*entry, groups map[string][]slipway.App, targets map[string]string) []claim {
	var out []claim
	for name, apps := range groups {
		if f.target(envs, targets, name) != slipway.TargetLocal {
			continue
		}
		for _, a := range apps {
			out = append(out, addressClaims(name, a)...)
		}
	}
	return out
}

// target is the kind of target of environment name: the default one's, one of envs, or one
// a set creates (targets).
func (f *Fleet) target(envs map[string]*entry, targets map[string]string, name string) string {
	if name == slipway.DefaultEnvironment {
		return f.cfg.DefaultTarget
	}
	if e, ok := envs[name]; ok {
		return e.env.Target.Kind
	}
	return targets[name]
}

// setClaims are the traffic addresses the apps of s take in local environments, s's own
// Environment documents counted.
func (f *Fleet) setClaims(s slipway.Set) []claim {
	targets := map[string]string{}
	for _, env := range s.Environments {
		targets[env.Name] = env.Target.Kind
	}
	groups := map[string][]slipway.App{}
	for _, a := range s.Apps {
		groups[a.EnvironmentName()] = append(groups[a.EnvironmentName()], a)
	}
	return f.claims(f.snapshot(), groups, targets)
}

// addressClaims are the traffic addresses app a of environment env has.
func addressClaims(env string, a slipway.App) []claim {
	var out []claim
	for _, c := range []claim{{field: "listen", addr: a.Traffic.Listen}, {field: "preview", addr: a.Traffic.Preview}} {
		if c.addr != "" {
			c.env, c.app = env, a.Name
			out = append(out, c)
		}
	}
	return out
}

// sameAddress reports whether binding a and b would collide: the same port (not 0) on the
// same host, or on any host when one of them is every address (an empty host, 0.0.0.0, ::).
func sameAddress(a, b string) bool {
	ha, pa, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	hb, pb, err := net.SplitHostPort(b)
	if err != nil || pa != pb || pa == "0" {
		return false
	}
	every := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || every(ha) || every(hb)
}
