package slipway

import (
	"encoding/json"
	"time"
)

// Event is an append-only record of something that happened: who (Actor), what (Kind and
// Message), when (Time) and why (Reason).
type Event struct {
	// Seq orders events; the store assigns it.
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	App     string    `json:"app,omitempty"`
	Rollout string    `json:"rollout,omitempty"`
	Kind    string    `json:"kind"`
	// Actor is "engine", "analysis", "drift" or the name of the API token that asked.
	Actor string `json:"actor"`
	// Peer is the network address the asking request came from ("" for slipway's own).
	Peer string `json:"peer,omitempty"`
	// Environment is the environment the event happened in, given by the API that serves it
	// ("" for default); each environment's store holds its own events.
	Environment string          `json:"environment,omitempty"`
	Message     string          `json:"message"`
	Reason      string          `json:"reason,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// Event kinds.
const (
	EventAppCreated        = "app.created"
	EventAppUpdated        = "app.updated"
	EventAppScaled         = "app.scaled"
	EventAppDeleted        = "app.deleted"
	EventTemplateApplied   = "template.applied"
	EventTemplateDeleted   = "template.deleted"
	EventRevisionCreated   = "revision.created"
	EventRolloutStarted    = "rollout.started"
	EventRolloutStep       = "rollout.step"
	EventRolloutWeight     = "rollout.weight"
	EventRolloutPaused     = "rollout.paused"
	EventRolloutResumed    = "rollout.resumed"
	EventRolloutPromoted   = "rollout.promoted"
	EventRolloutCompleted  = "rollout.completed"
	EventRolloutAborted    = "rollout.aborted"
	EventRolloutRetried    = "rollout.retried"
	EventRolloutSuperseded = "rollout.superseded"
	EventRolloutScaledDown = "rollout.scaledDown"
	EventAnalysisStarted   = "analysis.started"
	EventMeasurement       = "analysis.measurement"
	EventAnalysisWaiting   = "analysis.waiting" // a metric began waiting for its minimum sample
	EventAnalysisFinished  = "analysis.finished"
	EventDriftRepaired     = "drift.repaired"
	// EventTrafficHeld: traffic is kept off a revision with no ready instance while another
	// revision has ready ones; EventTrafficReleased: the held move was made.
	EventTrafficHeld       = "traffic.held"
	EventTrafficReleased   = "traffic.released"
	EventPlatformError     = "platform.error"
	EventFlagSetApplied    = "flagset.applied"
	EventFlagSetDeleted    = "flagset.deleted"
	EventFlagSetRolledBack = "flagset.rolledBack"
	EventFlagChanged       = "flag.changed"
	EventTokenCreated      = "token.created"
	EventTokenRevoked      = "token.revoked"
)

// Actors that are not people.
const (
	ActorEngine   = "engine"
	ActorAnalysis = "analysis"
	ActorDrift    = "drift"
)

// EventFilter selects events: all when zero.
type EventFilter struct {
	App     string `json:"app,omitempty"`
	Rollout string `json:"rollout,omitempty"`
	// After returns only events with Seq > After.
	After int64 `json:"after,omitempty"`
	// Limit caps the count: with After 0 the newest Limit events, otherwise the first Limit
	// events after After. Either way events come oldest first.
	Limit int `json:"limit,omitempty"`
}
