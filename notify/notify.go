// Package notify sends slipway's events to the URLs of notifications (kind: Notification):
// webhook subscriptions filtered by app, environment and event kind, as JSON or as Slack's
// incoming-webhook payload, optionally signed.
//
// One sender per notification and environment follows that environment's event log from a
// cursor kept in the store: it posts each matching event in order, retries a failed post
// with exponential backoff, records each outcome in the delivery log, and moves the cursor
// in the same transaction. A receiver that is down only holds its own sender back: senders
// read the stores and never take a lock the engines take, so no rollout waits on one. After
// a restart each sender resumes after the last event it dealt with; a new notification
// starts after the events that existed when it was applied.
//
// Start reading at Notifier.Run, then sender.go.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"
	"reflect"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// Defaults of Config.
const (
	DefaultPoll     = time.Second
	DefaultAttempts = 5
	DefaultBackoff  = time.Second
	MaxBackoff      = 30 * time.Second
	DefaultTimeout  = 10 * time.Second
)

// Source is one environment's event log.
type Source struct {
	Environment string
	Events      func(ctx context.Context, f slipway.EventFilter) ([]slipway.Event, error)
}

// Config is what a Notifier needs.
type Config struct {
	// Store keeps notifications, cursors and the delivery log (the default store).
	Store slipway.NotificationStore
	// Sources returns every environment's event log now (environments come and go).
	Sources func() []Source
	// Client posts the events (a client with DefaultTimeout when nil).
	Client *http.Client
	// Poll is how often a sender looks for new events.
	Poll time.Duration
	// Attempts is how many times an event is posted before it is given up (failed);
	// Backoff is the first wait between attempts, doubled each time up to MaxBackoff.
	Attempts int
	Backoff  time.Duration
	// Getenv and ReadFile read secrets (os.Getenv and os.ReadFile when nil).
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	Now      func() time.Time
	Log      *slog.Logger
}

// Notifier runs the senders of the server's notifications.
type Notifier struct {
	cfg Config

	mu      sync.Mutex
	subs    map[string]slipway.Notification
	senders map[senderKey]*running
	wg      sync.WaitGroup
	applyMu sync.Mutex
}

type senderKey struct{ notification, environment string }

type running struct {
	n      slipway.Notification
	cancel context.CancelFunc
}

// New returns a Notifier; it starts nothing.
func New(cfg Config) *Notifier {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{cfg: cfg, subs: map[string]slipway.Notification{}, senders: map[senderKey]*running{}}
}

// Run keeps one sender per notification and environment until ctx ends, then waits for
// them.
func (n *Notifier) Run(ctx context.Context) error {
	defer n.wg.Wait()
	if err := n.load(ctx); err != nil {
		return err
	}
	t := time.NewTicker(n.cfg.Poll)
	defer t.Stop()
	for {
		n.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// load reads the notifications.
func (n *Notifier) load(ctx context.Context) error {
	ns, err := n.cfg.Store.Notifications(ctx)
	if err != nil {
		return err
	}
	subs := make(map[string]slipway.Notification, len(ns))
	for _, s := range ns {
		subs[s.Name] = s
	}
	n.mu.Lock()
	n.subs = subs
	n.mu.Unlock()
	return nil
}

// reconcile starts the senders missing, and stops those of notifications changed or gone
// (a changed one starts again from its cursor).
func (n *Notifier) reconcile(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	sources := n.cfg.Sources()
	n.mu.Lock()
	defer n.mu.Unlock()
	want := map[senderKey]bool{}
	for _, sub := range n.subs {
		for _, src := range sources {
			if !matchesAny(sub.Environments, src.Environment) {
				continue
			}
			k := senderKey{sub.Name, src.Environment}
			want[k] = true
			if r, ok := n.senders[k]; ok && reflect.DeepEqual(r.n, sub) {
				continue
			} else if ok {
				r.cancel()
			}
			sctx, cancel := context.WithCancel(ctx)
			n.senders[k] = &running{n: sub, cancel: cancel}
			s := &sender{n: n, sub: sub, src: src}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				s.run(sctx)
			}()
		}
	}
	for k, r := range n.senders {
		if !want[k] {
			r.cancel()
			delete(n.senders, k)
		}
	}
}

// PlanNotifications says what applying ns changes, changing nothing.
func (n *Notifier) PlanNotifications(ctx context.Context, ns []slipway.Notification) ([]slipway.PlanChange, error) {
	stored, err := n.cfg.Store.Notifications(ctx)
	if err != nil {
		return nil, err
	}
	return plan(stored, ns), nil
}

// ApplyNotifications creates and updates ns, each with an event, in one transaction. A new
// notification starts after every event that exists now.
func (n *Notifier) ApplyNotifications(ctx context.Context, ns []slipway.Notification, opts slipway.ApplyOptions) ([]slipway.PlanChange, error) {
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	stored, err := n.cfg.Store.Notifications(ctx)
	if err != nil {
		return nil, err
	}
	changes := plan(stored, ns)
	var put []slipway.Notification
	var events []slipway.Event
	actor := opts.Actor
	if actor == "" {
		actor = "unknown"
	}
	for i, ch := range changes {
		if ch.Action == slipway.ActionUnchanged {
			continue
		}
		put = append(put, ns[i])
		events = append(events, slipway.Event{Time: n.cfg.Now(), Kind: slipway.EventNotificationApplied, Actor: actor, Reason: opts.Reason,
			Message: fmt.Sprintf("notification %s %sd", ns[i].Name, ch.Action)})
		if ch.Action == slipway.ActionCreate {
			for _, src := range n.cfg.Sources() {
				if err := n.startAtNewest(ctx, ns[i].Name, src); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(put) == 0 {
		return changes, nil
	}
	if err := n.cfg.Store.PutNotifications(ctx, put, events); err != nil {
		return nil, err
	}
	return changes, n.load(ctx)
}

// startAtNewest sets a new notification's cursor of src to its newest event, unless the
// notification has one there already (it was applied before and removed from the store's
// list by hand: it carries on).
func (n *Notifier) startAtNewest(ctx context.Context, name string, src Source) error {
	if _, ok, err := n.cfg.Store.NotifyCursor(ctx, name, src.Environment); err != nil || ok {
		return err
	}
	evs, err := src.Events(ctx, slipway.EventFilter{Limit: 1})
	if err != nil {
		return err
	}
	var seq int64
	if len(evs) > 0 {
		seq = evs[len(evs)-1].Seq
	}
	return n.cfg.Store.SetNotifyCursor(ctx, name, src.Environment, seq)
}

// Notifications lists the notifications, by name.
func (n *Notifier) Notifications(ctx context.Context) ([]slipway.Notification, error) {
	return n.cfg.Store.Notifications(ctx)
}

// Deliveries lists a notification's delivery log, newest first.
func (n *Notifier) Deliveries(ctx context.Context, name string, limit int) ([]slipway.NotificationDelivery, error) {
	n.mu.Lock()
	_, ok := n.subs[name]
	n.mu.Unlock()
	if !ok {
		if err := n.load(ctx); err != nil {
			return nil, err
		}
		n.mu.Lock()
		_, ok = n.subs[name]
		n.mu.Unlock()
	}
	if !ok {
		return nil, slipway.Errorf(slipway.ENOTFOUND, "notification %s does not exist", name)
	}
	return n.cfg.Store.NotificationDeliveries(ctx, name, limit)
}

// plan returns one change per notification of ns, in their order.
func plan(stored, ns []slipway.Notification) []slipway.PlanChange {
	byName := map[string]slipway.Notification{}
	for _, s := range stored {
		byName[s.Name] = s
	}
	out := make([]slipway.PlanChange, len(ns))
	for i, s := range ns {
		ch := slipway.PlanChange{Kind: slipway.KindNotification, Name: s.Name, Action: slipway.ActionCreate}
		if old, ok := byName[s.Name]; ok {
			ch.Action = slipway.ActionUnchanged
			if f := slipway.ChangedFields(old, s); len(f) > 0 {
				ch.Action, ch.Fields = slipway.ActionUpdate, f
			}
		}
		out[i] = ch
	}
	return out
}

// matches reports whether ev of environment env passes sub's filters.
func matches(sub slipway.Notification, env string, ev slipway.Event) bool {
	return matchesAny(sub.Environments, env) && matchesAny(sub.Apps, ev.App) && matchesAny(sub.Kinds, ev.Kind)
}

// matchesAny reports whether s matches one of the patterns (path.Match), or there are none.
func matchesAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, err := path.Match(p, s); err == nil && ok {
			return true
		}
	}
	return false
}
