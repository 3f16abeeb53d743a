package slipway

import "encoding/json"

// KindFlagSet is the kind of a flag-set document. A flag set is written in flagd's flag file
// format (https://flagd.dev/schema/v0/flags.json), so existing flagd files work unchanged.
const KindFlagSet = "FlagSet"

// FlagSet is a named group of feature flags, as read from one flagd-format file. Package
// flagfile parses it (flagfile.Parse) and package flags compiles it for evaluation
// (flags.Compile).
type FlagSet struct {
	// ID names the set: the file's metadata.flagSetId, or the file's base name without it.
	ID string `json:"id,omitempty"`
	// Metadata is the set's metadata; values are strings, numbers (float64) or booleans. It is
	// returned with every evaluation, under each flag's own metadata.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Flags maps a flag key to its definition.
	Flags map[string]Flag `json:"flags"`
	// Evaluators holds reusable JSON Logic rules, referenced from targeting as {"$ref": "name"}.
	Evaluators map[string]json.RawMessage `json:"$evaluators,omitempty"`
	// Revision is the version of the set; it grows by one with every stored change.
	Revision int64 `json:"revision,omitempty"`
}

// FlagState says whether a flag is served.
type FlagState string

// Flag states.
const (
	FlagEnabled  FlagState = "ENABLED"
	FlagDisabled FlagState = "DISABLED"
)

// Flag is one feature flag in flagd's format.
type Flag struct {
	// Key is the flag's key (the key of the flags map, or "key" in flagd's array form).
	Key   string    `json:"key,omitempty"`
	State FlagState `json:"state"`
	// Variants maps a variant name to its value. All values have one JSON type: boolean,
	// string, number or object.
	Variants map[string]json.RawMessage `json:"variants"`
	// DefaultVariant is served when targeting is absent or selects nothing. Nil means the
	// caller's code default is used.
	DefaultVariant *string `json:"defaultVariant"`
	// Targeting is a JSON Logic rule whose result names a variant; empty or {} means none.
	// It may contain {"$ref": "name"} references to the set's Evaluators.
	Targeting json.RawMessage `json:"targeting,omitempty"`
	// Metadata is the flag's metadata (scalar values); it overrides the set's metadata.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Ramp, a slipway extension, raises one variant's share step by step; the engine then
	// owns Targeting (see FlagRamp).
	Ramp *FlagRamp `json:"ramp,omitempty"`
}

// Reason says why an evaluation returned what it did (OpenFeature resolution reasons).
type Reason string

// Reasons.
const (
	// ReasonStatic: the flag has no targeting; its default variant was served.
	ReasonStatic Reason = "STATIC"
	// ReasonDefault: targeting selected nothing, or there is no default variant (then no value).
	ReasonDefault Reason = "DEFAULT"
	// ReasonTargetingMatch: targeting named the served variant.
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	// ReasonSplit: a fractional split chose the variant. Kept for clients; flagd-compatible
	// evaluation reports TARGETING_MATCH for fractional rules.
	ReasonSplit Reason = "SPLIT"
	// ReasonDisabled: the flag is disabled; no value is served.
	ReasonDisabled Reason = "DISABLED"
	// ReasonError: the evaluation failed; ErrorCode says how.
	ReasonError Reason = "ERROR"
	// ReasonUnknown: the reason is not known.
	ReasonUnknown Reason = "UNKNOWN"
)

// FlagErrorCode is an OpenFeature evaluation error code.
type FlagErrorCode string

// Flag evaluation error codes.
const (
	FlagNotFound            FlagErrorCode = "FLAG_NOT_FOUND"
	FlagParseError          FlagErrorCode = "PARSE_ERROR"
	FlagTypeMismatch        FlagErrorCode = "TYPE_MISMATCH"
	FlagTargetingKeyMissing FlagErrorCode = "TARGETING_KEY_MISSING"
	FlagInvalidContext      FlagErrorCode = "INVALID_CONTEXT"
	FlagGeneral             FlagErrorCode = "GENERAL"
)

// Evaluation is the result of evaluating one flag for one context, shaped like an OFREP
// evaluation body.
type Evaluation struct {
	Key string `json:"key"`
	// Value is the served variant's value (bool, string, float64 or map[string]any); it is
	// meaningful only when HasValue is true. Callers must not modify it.
	Value   any    `json:"value,omitempty"`
	Variant string `json:"variant,omitempty"`
	Reason  Reason `json:"reason"`
	// ErrorCode is set when Reason is ERROR.
	ErrorCode    FlagErrorCode `json:"errorCode,omitempty"`
	ErrorDetails string        `json:"errorDetails,omitempty"`
	// Metadata is the set's metadata merged under the flag's. Callers must not modify it.
	Metadata map[string]any `json:"metadata,omitempty"`
	// HasValue is false when no variant was served (disabled, error, or the code default:
	// reason DEFAULT without a default variant); the caller then uses its own default.
	HasValue bool `json:"-"`
}
