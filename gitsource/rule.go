package gitsource

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"slipway.dev/slipway"
)

// decision is what a commit does: the set applied, and the releases created after it.
type decision struct {
	set      slipway.Set
	releases []slipway.NewRelease
}

// decide applies the rule for apps a pipeline carries (docs/git.md) to a commit's set:
//
// Every document is applied as `slipway apply` would, except the App document of an app a
// pipeline carries (a Pipeline of the commit, or else one of the server's) in one of that
// pipeline's environments where the app exists already: that one is not applied. When such
// a document is in an environment of the pipeline's first stage and its version is not
// the one before the commit, the commit releases the app at that version through the
// pipeline. The version before the commit is the one the last commit applied gave the app
// there; when that commit had no such document, the version of the app's newest release;
// when it has none, the version running there. An App document of an app that does not
// exist yet in its environment is applied as written (so a commit can create a pipeline's
// apps). Documents of the first stage's environments that give one app two versions make
// the commit invalid: a release carries one version.
func (w *Watcher) decide(ctx context.Context, repo *git.Repository, m mark, head *object.Commit, set slipway.Set) (decision, error) {
	carriers, err := w.carriers(ctx, set.Pipelines)
	if err != nil {
		return decision{}, err
	}
	d := decision{set: set}
	d.set.Apps = nil
	before := w.before(ctx, repo, m)
	// versions: app -> version -> the first stage's environments that give it.
	versions := map[string]map[string][]string{}
	for _, a := range set.Apps {
		env := a.EnvironmentName()
		pl, ok := carriers[a.Name]
		if !ok || !slices.ContainsFunc(pl.Stages, func(st slipway.Stage) bool { return slices.Contains(st.Environments, env) }) {
			d.set.Apps = append(d.set.Apps, a)
			continue
		}
		running, err := w.cfg.Apps.AppVersion(ctx, env, a.Name)
		if slipway.ErrorCode(err) == slipway.ENOTFOUND {
			d.set.Apps = append(d.set.Apps, a) // created as written
			continue
		}
		if err != nil {
			return decision{}, err
		}
		if a.Version == "" || !slices.Contains(pl.Stages[0].Environments, env) {
			continue
		}
		was, err := before(env, a.Name, running)
		if err != nil {
			return decision{}, err
		}
		if a.Version == was {
			continue
		}
		if versions[a.Name] == nil {
			versions[a.Name] = map[string][]string{}
		}
		versions[a.Name][a.Version] = append(versions[a.Name][a.Version], env)
	}
	var problems []string
	for _, app := range slices.Sorted(maps.Keys(versions)) {
		vs := versions[app]
		if len(vs) > 1 {
			var said []string
			for _, v := range slices.Sorted(maps.Keys(vs)) {
				said = append(said, fmt.Sprintf("%s in %s", v, strings.Join(vs[v], ", ")))
			}
			problems = append(problems, fmt.Sprintf("App/%s: the first stage of pipeline %s gives it versions %s; a release carries one version, so give its environments one",
				app, carriers[app].Name, strings.Join(said, " and ")))
			continue
		}
		for v := range vs {
			d.releases = append(d.releases, slipway.NewRelease{App: app, Version: v, ChangedAt: head.Committer.When,
				Source: slipway.ReleaseSource{Commit: head.Hash.String(), URL: sourceURL(w.cfg.Repo), Trigger: slipway.ActorGit},
				Actor:  slipway.ActorGit, Reason: reason(head)})
		}
	}
	if len(problems) > 0 {
		return decision{}, &slipway.Error{Code: slipway.EINVALID, Message: fmt.Sprintf("%d errors in %s", len(problems), w.where(head)), Details: problems}
	}
	return d, nil
}

// carriers returns the pipeline that carries each app once the commit is applied: the
// server's pipelines, those of the commit in place of the server's of the same name.
func (w *Watcher) carriers(ctx context.Context, ps []slipway.Pipeline) (map[string]slipway.Pipeline, error) {
	server, err := w.cfg.Releases.Pipelines(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]slipway.Pipeline{}
	for _, p := range server {
		byName[p.Name] = p
	}
	for _, p := range ps {
		byName[p.Name] = p
	}
	out := map[string]slipway.Pipeline{}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		p := byName[name]
		if len(p.Stages) == 0 {
			continue
		}
		for _, app := range p.Apps {
			if _, ok := out[app]; !ok {
				out[app] = p
			}
		}
	}
	return out, nil
}

// before returns the function that says which version app had in environment env before
// the commit (see decide); running is the version it runs there. The last commit applied
// is read once, when first needed; when its files cannot be read any more (a history
// rewritten and collected), it counts as having none.
func (w *Watcher) before(ctx context.Context, repo *git.Repository, m mark) func(env, app, running string) (string, error) {
	var last map[[2]string]string
	read := false
	return func(env, app, running string) (string, error) {
		if !read && m.Applied != "" {
			read = true
			last = w.versionsAt(repo, m.Applied)
		}
		if v, ok := last[[2]string{env, app}]; ok {
			return v, nil
		}
		rs, err := w.cfg.Releases.Releases(ctx, app, 1)
		if err != nil {
			return "", err
		}
		if len(rs) > 0 {
			return rs[0].Version, nil
		}
		return running, nil
	}
}

// versionsAt returns the version of each (environment, app) the files at commit sha give;
// none when they cannot be read.
func (w *Watcher) versionsAt(repo *git.Repository, sha string) map[[2]string]string {
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		w.log.Warn("the last commit applied cannot be read; versions are compared with the releases", "commit", short(sha), "err", err)
		return nil
	}
	set, err := w.read(c)
	if err != nil {
		return nil
	}
	out := map[[2]string]string{}
	for _, a := range set.Apps {
		out[[2]string{a.EnvironmentName(), a.Name}] = a.Version
	}
	return out
}
