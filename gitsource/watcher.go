// Package gitsource is slipway's git trigger: it watches a branch of a git repository that
// holds slipway files and applies each new head of it, as `slipway apply -f DIR` would,
// through the server's Deployer — except that an app a pipeline carries is not changed in
// the pipeline's environments: the new version the commit gives it in the pipeline's first
// stage becomes a release, which the pipeline carries through its stages (rule.go).
//
// What was handled is kept in the store (the last commit applied, and the last one looked
// at), so that a restart neither applies a commit again nor skips one. An invalid commit is
// refused whole, recorded as an event with every problem's file:line, and applied nowhere.
//
// Start reading at Watcher.Sync (this file); repo.go reads the repository with go-git (a
// local path in place, a URL through a private bare clone), rule.go decides what of a
// commit is applied and what is released.
package gitsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"slipway.dev/slipway"
)

// DefaultPoll is how often the branch is looked at when Config.Poll is zero.
const DefaultPoll = 30 * time.Second

// markKey is the store key of what the watcher handled (a mark).
const markKey = "gitsource"

// Releases creates the releases of pipeline apps and says which pipelines carry them:
// delivery.Manager.
type Releases interface {
	// CreateRelease returns ENOTFOUND when no pipeline carries the app.
	CreateRelease(ctx context.Context, nr slipway.NewRelease) (slipway.Release, error)
	Releases(ctx context.Context, app string, limit int) ([]slipway.Release, error)
	Pipelines(ctx context.Context) ([]slipway.Pipeline, error)
}

// Apps says what runs where.
type Apps interface {
	// AppVersion returns the version app runs in environment env: ENOTFOUND when the app or
	// the environment does not exist (yet), EUNAVAILABLE when the environment exists but
	// cannot be read now.
	AppVersion(ctx context.Context, env, app string) (string, error)
}

// Store keeps what the watcher handled (the default environment's store).
type Store interface {
	// Meta returns the value stored under key; "" when none.
	Meta(ctx context.Context, key string) (string, error)
	// PutMeta stores value under key, and events, in one transaction.
	PutMeta(ctx context.Context, key, value string, events ...slipway.Event) error
}

// Config is what a Watcher needs.
type Config struct {
	// Repo is the repository: a local path (read in place) or a URL go-git fetches
	// (https://, ssh:// through the SSH agent, file://).
	Repo string
	// Branch is the branch watched; Path the directory of the files in the repository
	// ("" or "." for its root).
	Branch, Path string
	// CloneDir is the directory of the private bare clone of a repository given by URL
	// (under the server's data directory); unused for a local path.
	CloneDir string
	// Poll is how often the branch is looked at (DefaultPoll when zero).
	Poll time.Duration
	// Deployer applies a commit's set: the server's fleet (every environment).
	Deployer slipway.Deployer
	Releases Releases
	Apps     Apps
	Store    Store
	Now      func() time.Time
	Log      *slog.Logger
}

// Watcher applies the watched branch's new heads. It implements slipway.GitSyncer.
type Watcher struct {
	cfg Config
	log *slog.Logger
	// lock serialises looks at the branch (the poll's and Sync's from the API).
	lock chan struct{}
}

var _ slipway.GitSyncer = (*Watcher)(nil)

// New checks cfg and returns a Watcher; it starts nothing and reads nothing yet.
func New(cfg Config) (*Watcher, error) {
	var errs []string
	if cfg.Repo == "" {
		errs = append(errs, "the repository is required (a local path or a URL)")
	}
	if err := plumbing.NewBranchReferenceName(cfg.Branch).Validate(); cfg.Branch == "" || err != nil {
		errs = append(errs, fmt.Sprintf("branch %q is not a branch name (main, release/1)", cfg.Branch))
	}
	p, err := cleanPath(cfg.Path)
	if err != nil {
		errs = append(errs, err.Error())
	}
	cfg.Path = p
	if remote(cfg.Repo) && cfg.CloneDir == "" {
		errs = append(errs, "a repository given by URL needs a directory for its clone")
	}
	if cfg.Deployer == nil || cfg.Releases == nil || cfg.Apps == nil || cfg.Store == nil {
		errs = append(errs, "the deployer, releases, apps and store are required")
	}
	if len(errs) > 0 {
		return nil, slipway.Errorf(slipway.EINVALID, "git source: %s", strings.Join(errs, "; "))
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, log: cfg.Log, lock: make(chan struct{}, 1)}, nil
}

// cleanPath returns a directory of the repository in the form its trees name it ("" for
// the root), or why it is not one.
func cleanPath(p string) (string, error) {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", fmt.Errorf("path %q leaves the repository; name a directory inside it (deploy/)", p)
		}
	}
	return strings.Trim(path.Clean("/"+p), "/"), nil
}

// Run looks at the branch at once and then every Config.Poll until ctx ends. A look that
// fails (the repository cannot be read, the server is busy) is logged and tried again at
// the next one.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := w.Sync(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("git sync failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// mark is what the watcher handled, kept in the store under markKey. A mark of another
// repository, branch or path counts as none.
type mark struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	// Applied is the last commit applied; Seen the last one handled (applied or refused).
	Applied string `json:"applied,omitempty"`
	Seen    string `json:"seen,omitempty"`
}

// Sync looks at the branch now and handles its head when it was not handled before:
// applies it (and creates the releases it implies), or refuses it when it is invalid. A
// failure to read the repository or to apply (other than a refusal of the files) leaves the
// head unhandled, for the next look.
func (w *Watcher) Sync(ctx context.Context) (slipway.GitSync, error) {
	out := slipway.GitSync{Repo: redact(w.cfg.Repo), Branch: w.cfg.Branch, Path: w.cfg.Path}
	select {
	case w.lock <- struct{}{}:
	case <-ctx.Done():
		return out, ctx.Err()
	}
	defer func() { <-w.lock }()
	repo, head, err := w.open(ctx)
	if err != nil {
		return out, err
	}
	out.Commit = head.Hash.String()
	m, err := w.loadMark(ctx)
	if err != nil {
		return out, err
	}
	if m.Seen == out.Commit {
		out.Result = slipway.GitUnchanged
		return out, nil
	}
	log := w.log.With("commit", short(out.Commit))
	var d decision
	set, err := w.read(head)
	if err == nil {
		d, err = w.decide(ctx, repo, m, head, set)
	}
	if err == nil && !empty(d.set) {
		var p slipway.Plan
		p, err = w.cfg.Deployer.Apply(ctx, d.set, slipway.ApplyOptions{Actor: slipway.ActorGit, Reason: reason(head)})
		out.Changes = p.Changes
	}
	if slipway.ErrorCode(err) == slipway.EINVALID {
		return w.refuse(ctx, out, m, head, err)
	}
	if err != nil {
		return out, err
	}
	var notes []string
	for _, nr := range d.releases {
		id, err := w.release(ctx, nr)
		switch code := slipway.ErrorCode(err); {
		case err == nil:
			out.Releases = append(out.Releases, id)
		case code == slipway.EINVALID || code == slipway.ENOTFOUND:
			// The apply is done; a release the delivery refuses is said, not retried.
			notes = append(notes, fmt.Sprintf("release of %s %s refused: %s", nr.App, nr.Version, slipway.ErrorMessage(err)))
		default:
			return out, err // the next look applies the commit again (unchanged) and goes on
		}
	}
	out.Result = slipway.GitApplied
	msg := fmt.Sprintf("%s applied: %d changes", w.describe(head), len(out.Changes))
	if len(out.Releases) > 0 {
		msg += ", releases " + strings.Join(out.Releases, ", ")
	}
	if note := w.rewritten(repo, m, head); note != "" {
		notes = append(notes, note)
	}
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	if err := w.saveMark(ctx, m, out.Commit, true, w.event(slipway.EventGitApplied, msg, out)); err != nil {
		return out, err
	}
	log.Info("git commit applied", "changes", len(out.Changes), "releases", len(out.Releases))
	return out, nil
}

// refuse records that head is invalid (an event with every problem) and handled, and
// returns the refusal.
func (w *Watcher) refuse(ctx context.Context, out slipway.GitSync, m mark, head *object.Commit, err error) (slipway.GitSync, error) {
	out.Result, out.Changes = slipway.GitInvalid, nil
	var e *slipway.Error
	if errors.As(err, &e) {
		out.Errors = append([]string{e.Message}, e.Details...)
	} else {
		out.Errors = []string{err.Error()}
	}
	msg := fmt.Sprintf("%s refused, nothing changed: %s", w.describe(head), strings.Join(out.Errors, "; "))
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	if err := w.saveMark(ctx, m, out.Commit, false, w.event(slipway.EventGitInvalid, msg, out)); err != nil {
		return out, err
	}
	w.log.Warn("git commit refused", "commit", short(out.Commit), "errors", out.Errors)
	return out, nil
}

// maxMessage caps the message of a refusal's event (every problem is in its data).
const maxMessage = 4096

// release creates release nr unless the newest release of its app was made from the same
// commit at the same version (by a look that failed after it): then it is that one.
func (w *Watcher) release(ctx context.Context, nr slipway.NewRelease) (string, error) {
	rs, err := w.cfg.Releases.Releases(ctx, nr.App, 1)
	if err != nil {
		return "", err
	}
	if len(rs) > 0 && rs[0].Source.Trigger == nr.Source.Trigger && rs[0].Source.Commit == nr.Source.Commit && rs[0].Version == nr.Version {
		return rs[0].ID, nil
	}
	r, err := w.cfg.Releases.CreateRelease(ctx, nr)
	return r.ID, err
}

// rewritten says when the branch's history was rewritten since the last commit applied:
// that commit is no longer an ancestor of head.
func (w *Watcher) rewritten(repo *git.Repository, m mark, head *object.Commit) string {
	if m.Applied == "" {
		return ""
	}
	prev, err := repo.CommitObject(plumbing.NewHash(m.Applied))
	if err == nil {
		if ok, err := prev.IsAncestor(head); err == nil && ok {
			return ""
		}
	}
	return fmt.Sprintf("the branch's history was rewritten: %s, applied before, is not in it", short(m.Applied))
}

func (w *Watcher) loadMark(ctx context.Context) (mark, error) {
	zero := mark{Repo: redact(w.cfg.Repo), Branch: w.cfg.Branch, Path: w.cfg.Path}
	v, err := w.cfg.Store.Meta(ctx, markKey)
	if err != nil || v == "" {
		return zero, err
	}
	var m mark
	if err := json.Unmarshal([]byte(v), &m); err != nil || m.Repo != zero.Repo || m.Branch != zero.Branch || m.Path != zero.Path {
		return zero, nil //nolint:nilerr // a mark that cannot be read or is of another source is none
	}
	return m, nil
}

// saveMark records commit as handled (and applied, when applied) with ev.
func (w *Watcher) saveMark(ctx context.Context, m mark, commit string, applied bool, ev slipway.Event) error {
	m.Seen = commit
	if applied {
		m.Applied = commit
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return w.cfg.Store.PutMeta(ctx, markKey, string(b), ev)
}

func (w *Watcher) event(kind, msg string, out slipway.GitSync) slipway.Event {
	data, _ := json.Marshal(out)
	return slipway.Event{Time: w.cfg.Now(), Kind: kind, Actor: slipway.ActorGit, Message: msg, Data: data}
}

// describe names commit c in messages: its hash, subject, repository and branch.
func (w *Watcher) describe(c *object.Commit) string {
	return fmt.Sprintf("commit %s (%q) of %s branch %s", short(c.Hash.String()), subject(c), redact(w.cfg.Repo), w.cfg.Branch)
}

// reason is the reason of what a commit changes, for the events.
func reason(c *object.Commit) string {
	return "git commit " + short(c.Hash.String()) + ": " + subject(c)
}

// subject is the first line of c's message, at most 100 bytes.
func subject(c *object.Commit) string {
	s, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

func empty(s slipway.Set) bool {
	return len(s.Environments)+len(s.Pipelines)+len(s.Apps)+len(s.Templates)+len(s.FlagSets) == 0
}
