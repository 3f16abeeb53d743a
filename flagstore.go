package slipway

import (
	"context"
	"time"
)

// FlagSetRecord is one stored version of a flag set: its content and who changed it, when and
// why. Every version is kept, so a set can be rolled back to any earlier one.
type FlagSetRecord struct {
	// Set is the flag set. Set.Revision is the record's version: a write names the version
	// it read (0 for a set not stored yet), and the store sets the version it wrote.
	Set    FlagSet   `json:"set"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
}

// FlagStat is what is known of a flag's evaluations, for finding stale flags. It is counted
// in memory on the evaluation path and written to the store in batches.
type FlagStat struct {
	Key           string    `json:"key"`
	LastEvaluated time.Time `json:"lastEvaluated"`
	// LastVariant is the variant served last ("" when the last evaluations served none).
	LastVariant string `json:"lastVariant,omitempty"`
	// SingleVariantSince is when the flag began serving LastVariant to every evaluation;
	// zero while it serves more than one variant.
	SingleVariantSince time.Time `json:"singleVariantSince,omitzero"`
	// Evaluations counts every recorded evaluation.
	Evaluations int64 `json:"evaluations"`
}

// FlagStore keeps flag sets, their versions and their evaluation statistics; sets are written
// through Store.Commit (Change.FlagSets) so that they change in one transaction with apps.
// Implementation: sqlite.Store.
type FlagStore interface {
	// FlagSets returns the current version of every stored flag set, by ID.
	FlagSets(ctx context.Context) ([]FlagSetRecord, error)
	// FlagSet returns the current version of a set; ENOTFOUND when it is not stored.
	FlagSet(ctx context.Context, id string) (FlagSetRecord, error)
	// FlagSetHistory returns every kept version of a set, newest first, including those of
	// a deleted set; ENOTFOUND when there is none.
	FlagSetHistory(ctx context.Context, id string) ([]FlagSetRecord, error)
	// FlagStats returns the evaluation statistics of every flag ever evaluated, by key.
	FlagStats(ctx context.Context) ([]FlagStat, error)
	// SaveFlagStats writes (replaces) the statistics of the flags named in stats.
	SaveFlagStats(ctx context.Context, stats []FlagStat) error
}

// FlagInfo is one flag as the management API shows it: where it is declared, its state, and
// when it was last evaluated.
type FlagInfo struct {
	Key string `json:"key"`
	// Set is the ID of the flag set that declares the flag; Version is the set's version.
	Set            string    `json:"set"`
	Version        int64     `json:"version"`
	State          FlagState `json:"state"`
	DefaultVariant *string   `json:"defaultVariant"`
	// Variants lists the variant names, sorted.
	Variants  []string  `json:"variants"`
	Targeting bool      `json:"targeting"`
	UpdatedAt time.Time `json:"updatedAt"`
	// LastEvaluated is nil when the flag was never evaluated (as far as the store knows).
	LastEvaluated      *time.Time `json:"lastEvaluated,omitempty"`
	LastVariant        string     `json:"lastVariant,omitempty"`
	SingleVariantSince *time.Time `json:"singleVariantSince,omitempty"`
	// Stale says why a flag is stale (only in answers about stale flags).
	Stale string `json:"stale,omitempty"`
	// Flag is the flag's definition (only in answers about one flag).
	Flag *Flag `json:"flag,omitempty"`
}

// FlagVersion is one version of the flag set that declares a flag.
type FlagVersion struct {
	Set     string    `json:"set"`
	Version int64     `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	// Flag is the flag's definition in this version; nil when the version lacks the flag
	// (and in answers about a whole set).
	Flag *Flag `json:"flag,omitempty"`
}

// FlagChangeKind names a change to one flag.
type FlagChangeKind string

// Flag changes.
const (
	FlagEnable     FlagChangeKind = "enable"
	FlagDisable    FlagChangeKind = "disable"
	FlagSetDefault FlagChangeKind = "default"
)

// FlagChange is a change asked of one flag. Each makes a new version of the flag's set.
type FlagChange struct {
	Kind FlagChangeKind `json:"kind"`
	Key  string         `json:"key"`
	// Variant is the new default variant (FlagSetDefault).
	Variant string `json:"variant,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// FlagRollback asks for a set's content at an earlier version to become its newest version.
type FlagRollback struct {
	Set     string `json:"set"`
	Version int64  `json:"version"`
	Actor   string `json:"actor,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// StaleQuery says when a flag is stale: not evaluated for UnevaluatedFor, or serving one
// variant to every evaluation for SingleVariantFor. A zero duration turns that test off.
type StaleQuery struct {
	UnevaluatedFor   time.Duration `json:"unevaluatedFor"`
	SingleVariantFor time.Duration `json:"singleVariantFor"`
}

// FlagReader answers questions about flags. Implementation: engine.Engine.
type FlagReader interface {
	// Flags returns every flag of every set, by key.
	Flags(ctx context.Context) ([]FlagInfo, error)
	// Flag returns one flag with its definition; ENOTFOUND for an unknown key.
	Flag(ctx context.Context, key string) (FlagInfo, error)
	// FlagHistory returns the versions of the set declaring key, newest first; ENOTFOUND
	// for an unknown key.
	FlagHistory(ctx context.Context, key string) ([]FlagVersion, error)
	// StaleFlags returns the flags q finds stale, by key; EINVALID for a negative duration.
	StaleFlags(ctx context.Context, q StaleQuery) ([]FlagInfo, error)
	// EvaluateFlag evaluates key for evalCtx with the flags in force. An unknown key is not
	// an error: the Evaluation says FLAG_NOT_FOUND.
	EvaluateFlag(ctx context.Context, key string, evalCtx map[string]any) (Evaluation, error)
}

// FlagOperator changes flags. Implementation: engine.Engine.
type FlagOperator interface {
	// ChangeFlag enables or disables a flag or sets its default variant, as a new version of
	// its set. ENOTFOUND for an unknown key; EINVALID for an unknown variant or kind.
	ChangeFlag(ctx context.Context, c FlagChange) (FlagInfo, error)
	// RollbackFlagSet makes an earlier version's content the newest version of a set.
	// ENOTFOUND for an unknown set or version; EINVALID when that content no longer fits
	// beside the other sets (a flag key now declared elsewhere).
	RollbackFlagSet(ctx context.Context, r FlagRollback) (FlagVersion, error)
}
