package gitsource_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/gitsource"
	"slipway.dev/slipway/slipwaytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestWatcher_AppliesCommits: the first commit creates the environments, the pipeline and
// the apps as written; a commit that changes web's version releases it through the
// pipeline (not applied to staging or production), exactly once, with the commit as its
// source; a commit that changes only api's version (no pipeline) applies it directly.
func TestWatcher_AppliesCommits(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	first := repo.commit("first", initial())
	g := w.watcher(repo.dir)

	out := w.sync(g)
	if out.Result != slipway.GitApplied || out.Commit != first || len(out.Releases) != 0 {
		t.Fatalf("first sync: %+v", out)
	}
	for _, c := range [][2]string{{"staging", "web"}, {"production", "web"}, {slipway.DefaultEnvironment, "api"}} {
		if v := w.version(c[0], c[1]); v != "v1" {
			t.Errorf("%s in %s: version %q, want v1 (created as written)", c[1], c[0], v)
		}
	}
	if rs := w.releases("web"); len(rs) != 0 {
		t.Errorf("creating the apps made releases: %+v", rs)
	}
	if again := w.sync(g); again.Result != slipway.GitUnchanged || again.Commit != first {
		t.Errorf("a second look at the same head: %+v", again)
	}

	second := repo.commit("web v2", webFiles("v2", "v2"))
	out = w.sync(g)
	if out.Result != slipway.GitApplied || out.Commit != second || len(out.Releases) != 1 {
		t.Fatalf("sync of web v2: %+v", out)
	}
	rs := w.releases("web")
	if len(rs) != 1 {
		t.Fatalf("releases of web: %+v", rs)
	}
	r := rs[0]
	wantTime := time.Date(2026, 3, 2, 9, 1, 0, 0, time.UTC)
	if r.ID != out.Releases[0] || r.Version != "v2" || r.Source.Commit != second || r.Source.Trigger != "git" || !r.ChangedAt.Equal(wantTime) || r.CreatedBy != "git" {
		t.Errorf("release %+v; want web v2 from commit %s (trigger git) changed at %v", r, second, wantTime)
	}
	// Production waits behind its approval gate: the commit did not change it.
	if v := w.version("production", "web"); v != "v1" {
		t.Errorf("production's web is %q; the commit must not apply it (the release carries it)", v)
	}
	// The release deploys to staging by itself.
	slipwaytest.Eventually(t, 20*time.Second, "the release deploys web v2 to staging", func() bool { return w.version("staging", "web") == "v2" })

	third := repo.commit("api v2", map[string]string{"deploy/api.yaml": appYAML("api", "", "v2")})
	out = w.sync(g)
	if out.Result != slipway.GitApplied || out.Commit != third || len(out.Releases) != 0 {
		t.Fatalf("sync of api v2: %+v", out)
	}
	if v := w.version(slipway.DefaultEnvironment, "api"); v != "v2" {
		t.Errorf("api: version %q, want v2 (no pipeline carries it: applied directly)", v)
	}
	if rs := w.releases("web"); len(rs) != 1 {
		t.Errorf("a commit that left web's version alone made a release of it: %+v", rs)
	}
	applied := w.events(slipway.EventGitApplied)
	if len(applied) != 3 || !strings.Contains(applied[1].Message, "commit "+second[:12]) || !strings.Contains(applied[1].Message, "releases web-r1") {
		t.Errorf("git.applied events: %+v", applied)
	}
}

// TestWatcher_RefusesInvalidCommits: a commit with a YAML syntax error or a misspelt field
// is refused whole (an event with the commit and each problem's file:line), changes
// nothing, and is not looked at again; the next valid commit is compared with the last one
// applied.
func TestWatcher_RefusesInvalidCommits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"bad YAML", map[string]string{"deploy/web-staging.yaml": appYAML("web", "staging", "v2") + "  run: [unclosed\n"},
			"deploy/web-staging.yaml:8: invalid YAML"},
		{"bad field", map[string]string{"deploy/api.yaml": strings.Replace(appYAML("api", "", "v2"), "replicas: 2", "replica: 2", 1)},
			"deploy/api.yaml:5:3: spec.replica"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, repo := newWorld(t), newGitRepo(t)
			repo.commit("first", initial())
			g := w.watcher(repo.dir)
			w.sync(g)
			files := webFiles("v2", "v1")
			for k, v := range tc.files {
				files[k] = v
			}
			bad := repo.commit("broken", files)
			out := w.sync(g)
			if out.Result != slipway.GitInvalid || out.Commit != bad || !strings.Contains(strings.Join(out.Errors, "\n"), tc.want) {
				t.Fatalf("sync of the broken commit: %+v; want errors with %q", out, tc.want)
			}
			evs := w.events(slipway.EventGitInvalid)
			if len(evs) != 1 || !strings.Contains(evs[0].Message, bad[:12]) || !strings.Contains(evs[0].Message, tc.want) {
				t.Fatalf("git.invalid events: %+v", evs)
			}
			if rs := w.releases("web"); len(rs) != 0 {
				t.Errorf("the invalid commit made releases: %+v", rs)
			}
			if v := w.version(slipway.DefaultEnvironment, "api"); v != "v1" {
				t.Errorf("api is %q after the invalid commit; want v1", v)
			}
			if again := w.sync(g); again.Result != slipway.GitUnchanged {
				t.Errorf("the refused head was handled again: %+v", again)
			}
			if evs := w.events(slipway.EventGitInvalid); len(evs) != 1 {
				t.Errorf("the refusal was recorded %d times", len(evs))
			}
			fixed := repo.commit("fixed", map[string]string{"deploy/web-staging.yaml": appYAML("web", "staging", "v2"), "deploy/api.yaml": appYAML("api", "", "v1")})
			out = w.sync(g)
			if out.Result != slipway.GitApplied || out.Commit != fixed || len(out.Releases) != 1 {
				t.Fatalf("sync of the fixed commit: %+v", out)
			}
		})
	}
}

// TestWatcher_RestartNeitherReappliesNorSkips: a new watcher on the same store does not
// apply the commit its predecessor applied, and applies the one pushed while none ran.
func TestWatcher_RestartNeitherReappliesNorSkips(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	repo.commit("first", initial())
	w.sync(w.watcher(repo.dir))
	second := repo.commit("web v2", webFiles("v2", "v2"))
	if out := w.sync(w.watcher(repo.dir)); out.Result != slipway.GitApplied || out.Commit != second || len(out.Releases) != 1 {
		t.Fatalf("after a restart, the new commit: %+v", out)
	}
	if out := w.sync(w.watcher(repo.dir)); out.Result != slipway.GitUnchanged {
		t.Fatalf("after another restart, the same head: %+v", out)
	}
	if rs, evs := w.releases("web"), w.events(slipway.EventGitApplied); len(rs) != 1 || len(evs) != 2 {
		t.Errorf("after restarts: %d releases, %d git.applied events; want 1 and 2", len(rs), len(evs))
	}
}

// TestWatcher_FollowsARewrittenHistory: after a force-push that drops the commit applied,
// the new head is applied like any other; its version is compared with the files of the
// commit applied before (still in the repository), so going back to v1 releases v1.
func TestWatcher_FollowsARewrittenHistory(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	first := repo.commit("first", initial())
	g := w.watcher(repo.dir)
	w.sync(g)
	repo.commit("web v2", webFiles("v2", "v2"))
	w.sync(g)
	repo.resetTo(first)
	rewritten := repo.commit("scale api instead", map[string]string{"deploy/api.yaml": strings.Replace(appYAML("api", "", "v1"), "replicas: 2", "replicas: 3", 1)})
	out := w.sync(g)
	if out.Result != slipway.GitApplied || out.Commit != rewritten || len(out.Releases) != 1 {
		t.Fatalf("sync of the rewritten branch: %+v", out)
	}
	rs := w.releases("web")
	if len(rs) != 2 || rs[0].Version != "v1" || rs[0].Source.Commit != rewritten {
		t.Errorf("releases of web: %+v; want the newest at v1 from %s", rs, rewritten)
	}
	evs := w.events(slipway.EventGitApplied)
	if msg := evs[len(evs)-1].Message; !strings.Contains(msg, "history was rewritten") {
		t.Errorf("the last git.applied event does not say the history was rewritten: %s", msg)
	}
}

// TestWatcher_WatchesItsBranchOnly: commits on another branch are not applied.
func TestWatcher_WatchesItsBranchOnly(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	first := repo.commit("first", initial())
	g := w.watcher(repo.dir)
	w.sync(g)
	repo.checkout("feature", true)
	repo.commit("web v9 on a branch", webFiles("v9", "v9"))
	if out := w.sync(g); out.Result != slipway.GitUnchanged || out.Commit != first {
		t.Errorf("a commit on another branch was looked at: %+v", out)
	}
	if rs := w.releases("web"); len(rs) != 0 {
		t.Errorf("releases: %+v", rs)
	}
}

// TestWatcher_RefusesTwoVersionsInOneStage: a first stage of two environments whose files
// give web two versions is refused: a release carries one version.
func TestWatcher_RefusesTwoVersionsInOneStage(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	files := initial()
	files["deploy/environments.yaml"] = environmentsYAML + "---\n" + strings.ReplaceAll(strings.SplitN(environmentsYAML, "---\n", 2)[0], "staging", "qa")
	files["deploy/pipeline.yaml"] = strings.Replace(pipelineYAML, "environments: [staging]", "environments: [staging, qa]", 1)
	files["deploy/web-qa.yaml"] = appYAML("web", "qa", "v1")
	repo.commit("first", files)
	g := w.watcher(repo.dir)
	if out := w.sync(g); out.Result != slipway.GitApplied {
		t.Fatalf("first: %+v", out)
	}
	repo.commit("two versions", map[string]string{"deploy/web-staging.yaml": appYAML("web", "staging", "v2"), "deploy/web-qa.yaml": appYAML("web", "qa", "v3")})
	out := w.sync(g)
	if out.Result != slipway.GitInvalid || !strings.Contains(strings.Join(out.Errors, "\n"), "versions v2 in staging and v3 in qa") {
		t.Errorf("sync: %+v", out)
	}
	if rs := w.releases("web"); len(rs) != 0 {
		t.Errorf("releases: %+v", rs)
	}
}

// TestWatcher_ClonesARepositoryByURL: a repository given by URL is fetched into the
// private clone, and each new commit on it is fetched and applied.
func TestWatcher_ClonesARepositoryByURL(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	repo.commit("first", initial())
	g := w.watcher("file://" + repo.dir)
	if out := w.sync(g); out.Result != slipway.GitApplied {
		t.Fatalf("first: %+v", out)
	}
	second := repo.commit("web v2", webFiles("v2", "v2"))
	if out := w.sync(g); out.Result != slipway.GitApplied || out.Commit != second || len(out.Releases) != 1 {
		t.Fatalf("second: %+v", out)
	}
}

// TestWatcher_RunPollsUntilCancelled: Run applies a new commit by itself and returns when
// its context ends.
func TestWatcher_RunPollsUntilCancelled(t *testing.T) {
	w, repo := newWorld(t), newGitRepo(t)
	repo.commit("first", initial())
	g := w.watcher(repo.dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	slipwaytest.Eventually(t, 20*time.Second, "the first commit applied", func() bool { return w.version("staging", "web") == "v1" })
	repo.commit("web v2", webFiles("v2", "v2"))
	slipwaytest.Eventually(t, 20*time.Second, "a release of web", func() bool { return len(w.releases("web")) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestNew_RefusesABadConfig: the configuration's problems are said at once.
func TestNew_RefusesABadConfig(t *testing.T) {
	_, err := gitsource.New(gitsource.Config{Repo: "https://example.com/r.git", Branch: "a..b", Path: "../x"})
	msg := slipway.ErrorMessage(err)
	for _, want := range []string{"branch", "leaves the repository", "clone", "required"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
}
