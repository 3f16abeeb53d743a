package slipway

import "context"

// Kinds of the events of the git source (slipway server --git-repo): a commit applied, and
// one refused because its files are invalid (every problem with its file:line).
const (
	EventGitApplied = "git.applied"
	EventGitInvalid = "git.invalid"
)

// ActorGit is the actor of what the git source does.
const ActorGit = "git"

// GitResult is what a look at the watched branch did with its head.
type GitResult string

// Git results.
const (
	// GitApplied: the head's files were applied (and releases created).
	GitApplied GitResult = "applied"
	// GitInvalid: the head's files were refused; nothing was changed.
	GitInvalid GitResult = "invalid"
	// GitUnchanged: the head was handled before; nothing was done.
	GitUnchanged GitResult = "unchanged"
)

// GitSync is what one look at the watched repository did.
type GitSync struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	// Commit is the branch's head looked at.
	Commit string    `json:"commit"`
	Result GitResult `json:"result"`
	// Changes are what applying the commit changed; Releases the releases it created.
	Changes  []PlanChange `json:"changes,omitempty"`
	Releases []string     `json:"releases,omitempty"`
	// Errors are an invalid commit's problems, each with its file:line when it has one.
	Errors []string `json:"errors,omitempty"`
}

// GitSyncer applies the watched branch of a git repository. Implementation:
// gitsource.Watcher.
type GitSyncer interface {
	// Sync looks at the branch now and applies its head when it was not handled before.
	// EUNAVAILABLE when the repository cannot be read; an invalid commit is a GitSync
	// with Result GitInvalid, not an error.
	Sync(ctx context.Context) (GitSync, error)
}
