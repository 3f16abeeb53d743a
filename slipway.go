// Package slipway holds slipway's domain: the types a user declares (App, AnalysisTemplate),
// the records the engine keeps (Revision, Rollout, AnalysisRun, Event), the coded Error, and
// the contracts every adapter implements (Platform, Store, Provider).
//
// It imports the standard library only. Start reading at App (app.go), then Rollout
// (rollout.go) and Platform (platform.go).
package slipway

// APIVersion is the apiVersion every document in a slipway file carries.
const APIVersion = "slipway.dev/v1alpha1"

// Kinds of documents in a slipway file.
const (
	KindApp              = "App"
	KindAnalysisTemplate = "AnalysisTemplate"
)

// Set is a validated group of documents, as read from one or more files.
type Set struct {
	// Environments are the places apps run; they belong to no environment themselves.
	Environments []Environment      `json:"environments,omitempty"`
	Apps         []App              `json:"apps,omitempty"`
	Templates    []AnalysisTemplate `json:"templates,omitempty"`
	FlagSets     []FlagSet          `json:"flagSets,omitempty"`
	// Pipelines carry releases through environments; like Environments they belong to the
	// server, not to an environment.
	Pipelines []Pipeline `json:"pipelines,omitempty"`
	// Notifications send events to URLs; they belong to the server too.
	Notifications []Notification `json:"notifications,omitempty"`
}
