package slipway

import "context"

// Store keeps slipway's state. Implementation: sqlite.Store.
//
// Records carry a Version for optimistic concurrency: a write names the version it read (0
// for a new record) and fails with ECONFLICT when the stored version differs. On success
// Commit sets each written record's Version to the stored one (read version + 1).
type Store interface {
	StateReader
	// Commit writes c in one transaction: all of it or nothing. It returns ECONFLICT when a
	// record's version is stale or a record to insert already exists, and ENOTFOUND when a
	// record to delete does not exist. Revisions beyond an app's HistoryLimit that no active
	// rollout uses are pruned in the same transaction. Events get their Seq assigned in c.
	Commit(ctx context.Context, c *Change) error
}

// StateReader reads what a Store keeps. Each method returns ENOTFOUND for a missing record.
type StateReader interface {
	App(ctx context.Context, name string) (AppState, error)
	Apps(ctx context.Context) ([]AppState, error)
	Template(ctx context.Context, name string) (AnalysisTemplate, error)
	Templates(ctx context.Context) ([]AnalysisTemplate, error)
	// Revisions returns an app's kept revisions, newest first.
	Revisions(ctx context.Context, app string) ([]Revision, error)
	Revision(ctx context.Context, app, id string) (Revision, error)
	Rollout(ctx context.Context, id string) (Rollout, error)
	// Rollouts returns an app's rollouts, newest first, at most limit (all when limit <= 0).
	Rollouts(ctx context.Context, app string, limit int) ([]Rollout, error)
	// ActiveRollouts returns every rollout for which Active() is true, of every app.
	ActiveRollouts(ctx context.Context) ([]Rollout, error)
	AnalysisRun(ctx context.Context, id string) (AnalysisRun, error)
	// AnalysisRuns returns a rollout's runs, oldest first.
	AnalysisRuns(ctx context.Context, rollout string) ([]AnalysisRun, error)
	// FlagAnalysisRuns returns the runs of a flag's ramps, oldest first.
	FlagAnalysisRuns(ctx context.Context, flag string) ([]AnalysisRun, error)
	Events(ctx context.Context, f EventFilter) ([]Event, error)
}

// Change is a set of writes committed together.
type Change struct {
	Apps            []AppState         `json:"apps,omitempty"`
	DeleteApps      []string           `json:"deleteApps,omitempty"`
	Templates       []AnalysisTemplate `json:"templates,omitempty"`
	DeleteTemplates []string           `json:"deleteTemplates,omitempty"`
	// Revisions are inserted; an existing revision with the same app and ID is left as is.
	Revisions []Revision    `json:"revisions,omitempty"`
	Rollouts  []Rollout     `json:"rollouts,omitempty"`
	Runs      []AnalysisRun `json:"runs,omitempty"`
	Events    []Event       `json:"events,omitempty"`
	// FlagSets are written as new versions of their sets; every version is kept. A record's
	// Set.Revision is the version read (0 for a new set) and is set to the stored one.
	FlagSets []FlagSetRecord `json:"flagSets,omitempty"`
	// DeleteFlagSets removes sets; their versions are kept, so history outlives them.
	DeleteFlagSets []string `json:"deleteFlagSets,omitempty"`
}

// Empty reports whether c writes nothing.
func (c *Change) Empty() bool {
	return len(c.Apps) == 0 && len(c.DeleteApps) == 0 && len(c.Templates) == 0 &&
		len(c.DeleteTemplates) == 0 && len(c.Revisions) == 0 && len(c.Rollouts) == 0 &&
		len(c.Runs) == 0 && len(c.Events) == 0 && len(c.FlagSets) == 0 && len(c.DeleteFlagSets) == 0
}
