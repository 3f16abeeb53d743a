package slipway

import (
	"context"
	"time"
)

// KindNotification is the kind of a Notification document.
const KindNotification = "Notification"

// EventNotificationApplied records a notification created or changed.
const EventNotificationApplied = "notification.applied"

// Notification formats.
const (
	NotifyJSON  = "json"  // {"environment": ..., "event": Event}
	NotifySlack = "slack" // {"text": ...}: Slack's and Mattermost's incoming webhooks
)

// Notification sends the events that match its filters to a URL, each as one POST, in the
// order they happened per environment. Like pipelines, notifications belong to the server.
type Notification struct {
	Name string `json:"name"`
	// URL receives the events; URLFrom reads it from the server's environment or a file
	// instead (an incoming webhook's URL is a secret).
	URL     string      `json:"url,omitempty"`
	URLFrom *SecretFrom `json:"urlFrom,omitempty"`
	// Format is NotifyJSON (the default) or NotifySlack.
	Format string `json:"format,omitempty"`
	// SecretFrom, when set, signs each body: X-Slipway-Signature: sha256=HEX, the
	// HMAC-SHA256 of the body with the secret.
	SecretFrom *SecretFrom `json:"secretFrom,omitempty"`
	// Apps, Environments and Kinds filter the events (none: every one). Kinds are patterns
	// like release.* or rollout.aborted.
	Apps         []string `json:"apps,omitempty"`
	Environments []string `json:"environments,omitempty"`
	Kinds        []string `json:"kinds,omitempty"`
}

// SecretFrom names where the server reads a secret: an environment variable or a file.
type SecretFrom struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

// NotificationDelivery is one event sent (or given up on) to a notification's URL.
type NotificationDelivery struct {
	ID           int64  `json:"id"`
	Notification string `json:"notification"`
	Environment  string `json:"environment"`
	Seq          int64  `json:"seq"`
	Kind         string `json:"kind"`
	// Status is "delivered" or "failed" (every attempt failed; the next event goes on).
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Code     int       `json:"code,omitempty"`
	Error    string    `json:"error,omitempty"`
	Time     time.Time `json:"time"`
}

// NotificationStore keeps notifications, how far each has sent each environment's events,
// and the delivery log. Implementation: sqlite.Store.
type NotificationStore interface {
	Notifications(ctx context.Context) ([]Notification, error)
	// PutNotifications creates or replaces ns and stores events in one transaction.
	PutNotifications(ctx context.Context, ns []Notification, events []Event) error
	// NotifyCursor returns the Seq of the last event of environment env that notification
	// name has dealt with; false when it has none yet.
	NotifyCursor(ctx context.Context, name, env string) (int64, bool, error)
	// RecordDelivery stores d and moves the cursor of d's notification and environment to
	// d.Seq, in one transaction.
	RecordDelivery(ctx context.Context, d NotificationDelivery) error
	// SetNotifyCursor moves a cursor without a delivery (events that match no filter).
	SetNotifyCursor(ctx context.Context, name, env string, seq int64) error
	// NotificationDeliveries lists a notification's deliveries, newest first, at most limit.
	NotificationDeliveries(ctx context.Context, name string, limit int) ([]NotificationDelivery, error)
}

// NotificationReader lists notifications and their delivery logs. Implementation:
// notify.Notifier.
type NotificationReader interface {
	Notifications(ctx context.Context) ([]Notification, error)
	// Deliveries lists a notification's delivery log, newest first; ENOTFOUND for an
	// unknown notification.
	Deliveries(ctx context.Context, name string, limit int) ([]NotificationDelivery, error)
}
