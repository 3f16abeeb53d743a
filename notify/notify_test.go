package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/notify"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

// receiver records what it is sent; failing makes it answer 503.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	failing atomic.Bool
}

type received struct {
	body      []byte
	signature string
	delivery  string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.failing.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{body: b, signature: req.Header.Get(notify.HeaderSignature), delivery: req.Header.Get(notify.HeaderDelivery)})
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type bench struct {
	t      *testing.T
	def    *sqlite.Store
	prod   *sqlite.Store
	n      *notify.Notifier
	cancel context.CancelFunc
	done   chan error
	env    map[string]string
}

func newBench(t *testing.T) *bench {
	dir := t.TempDir()
	open := func(name string) *sqlite.Store {
		s, err := sqlite.Open(filepath.Join(dir, name+".db"), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	b := &bench{t: t, def: open("default"), prod: open("production"), env: map[string]string{}}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *bench) start() {
	b.n = notify.New(notify.Config{Store: b.def, Poll: 5 * time.Millisecond, Attempts: 3, Backoff: 5 * time.Millisecond,
		Getenv: func(k string) string { return b.env[k] },
		Sources: func() []notify.Source {
			return []notify.Source{{Environment: "default", Events: b.def.Events}, {Environment: "production", Events: b.prod.Events}}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- b.n.Run(ctx) }()
}

func (b *bench) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	if err := <-b.done; err != nil {
		b.t.Errorf("notifier: %v", err)
	}
	b.cancel = nil
}

func (b *bench) event(s *sqlite.Store, app, kind, msg string) {
	b.t.Helper()
	if err := s.Commit(context.Background(), &slipway.Change{Events: []slipway.Event{{App: app, Kind: kind, Actor: "engine", Message: msg}}}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bench) apply(ns ...slipway.Notification) {
	b.t.Helper()
	if _, err := b.n.ApplyNotifications(context.Background(), ns, slipway.ApplyOptions{Actor: "test"}); err != nil {
		b.t.Fatal(err)
	}
}

// TestNotifier_PostsMatchingEventsInOrderSignedAndOnce: only events after the notification
// was applied, matching its filters, are posted, in order, signed, as JSON or Slack text;
// a receiver that is down gets them once it is back (retries), one given up on is logged
// as failed; a restart resends nothing.
func TestNotifier_PostsMatchingEventsInOrderSignedAndOnce(t *testing.T) {
	b := newBench(t)
	jsonR, slackR := newReceiver(t), newReceiver(t)
	b.env["SLACK_URL"] = slackR.srv.URL
	b.event(b.prod, "web", "rollout.started", "before the notification existed")
	b.apply(
		slipway.Notification{Name: "audit", URL: jsonR.srv.URL, SecretFrom: &slipway.SecretFrom{Env: "AUDIT_SECRET"}, Apps: []string{"web"}},
		slipway.Notification{Name: "chat", URLFrom: &slipway.SecretFrom{Env: "SLACK_URL"}, Format: slipway.NotifySlack,
			Environments: []string{"production"}, Kinds: []string{"release.*", "rollout.aborted"}},
	)
	b.env["AUDIT_SECRET"] = "audit-secret"
	b.event(b.prod, "web", "rollout.started", "rollout web-2 started")
	b.event(b.prod, "api", "rollout.aborted", "rollout api-4 aborted")
	b.event(b.def, "web", "release.created", "release web-r1 created")
	b.event(b.prod, "web", "rollout.aborted", "rollout web-2 aborted")

	slipwaytest.Eventually(t, 10*time.Second, "audit got web's 3 events", func() bool { return len(jsonR.all()) == 3 })
	slipwaytest.Eventually(t, 10*time.Second, "chat got production's 2 aborts", func() bool { return len(slackR.all()) == 2 })
	perEnv := map[string][]string{}
	for _, r := range jsonR.all() {
		var p notify.JSONPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		mac := hmac.New(sha256.New, []byte("audit-secret"))
		mac.Write(r.body)
		if r.signature != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("signature %q does not sign the body", r.signature)
		}
		if p.Event.App != "web" || strings.Contains(p.Event.Message, "before") {
			t.Errorf("audit got %+v", p)
		}
		perEnv[p.Environment] = append(perEnv[p.Environment], p.Event.Message)
	}
	if got := strings.Join(perEnv["production"], "; "); got != "rollout web-2 started; rollout web-2 aborted" {
		t.Errorf("production's events for audit, in order: %s", got)
	}
	texts := []string{}
	for _, r := range slackR.all() {
		var p notify.SlackPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, p.Text)
		if r.signature != "" {
			t.Error("chat is not signed, yet a signature was sent")
		}
	}
	if texts[0] != "[production] api: rollout api-4 aborted (rollout.aborted, by engine)" {
		t.Errorf("slack text: %q", texts[0])
	}

	// The receiver goes down: the event waits in retries, then is logged as failed; the
	// next one is delivered once it is back.
	jsonR.failing.Store(true)
	b.event(b.prod, "web", "rollout.completed", "lost while down")
	slipwaytest.Eventually(t, 10*time.Second, "a failed delivery logged", func() bool {
		ds, _ := b.n.Deliveries(context.Background(), "audit", 1)
		return len(ds) == 1 && ds[0].Status == "failed" && ds[0].Attempts == 3 && ds[0].Code == http.StatusServiceUnavailable
	})
	jsonR.failing.Store(false)
	b.event(b.prod, "web", "rollout.started", "after the outage")
	slipwaytest.Eventually(t, 10*time.Second, "delivered after the outage", func() bool { return len(jsonR.all()) == 4 })
	// Delivery is at least once: an event whose answer a stopping sender never read is sent
	// again (with the same X-Slipway-Delivery). Once it is logged, a restart resends nothing.
	slipwaytest.Eventually(t, 10*time.Second, "the delivery after the outage logged", func() bool {
		ds, err := b.n.Deliveries(context.Background(), "audit", 1)
		return err == nil && len(ds) == 1 && ds[0].Status == "delivered" && ds[0].Seq == 6
	})

	// A restart resends nothing already dealt with.
	b.stop()
	b.start()
	b.event(b.prod, "web", "rollout.completed", "after the restart")
	slipwaytest.Eventually(t, 10*time.Second, "the event after the restart", func() bool { return len(jsonR.all()) == 5 })
	if got := jsonR.all(); !strings.Contains(string(got[4].body), "after the restart") {
		t.Errorf("after the restart got %s", got[4].body)
	}
	seen := map[string]bool{}
	for _, r := range jsonR.all() {
		if seen[r.delivery] {
			t.Errorf("delivery %s was sent twice", r.delivery)
		}
		seen[r.delivery] = true
	}
	// Each delivery is logged once it was sent: 5 delivered, 1 failed.
	slipwaytest.Eventually(t, 10*time.Second, "6 entries in audit's delivery log", func() bool {
		ds, err := b.n.Deliveries(context.Background(), "audit", 0)
		return err == nil && len(ds) == 6
	})
	if _, err := b.n.Deliveries(context.Background(), "nope", 0); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("deliveries of an unknown notification: %v", err)
	}
}

// TestNotifier_ADownReceiverHoldsNothingElse: one notification whose receiver hangs does not
// hold back another's, nor the stores the engines write.
func TestNotifier_ADownReceiverHoldsNothingElse(t *testing.T) {
	// Closed after the notifier stops (cleanups run last first): its requests end then.
	// It reads the body first: only then does the server notice that the client went away.
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	b := newBench(t)
	ok := newReceiver(t)
	b.apply(slipway.Notification{Name: "hung", URL: hung.URL}, slipway.Notification{Name: "ok", URL: ok.srv.URL})
	start := time.Now()
	for i := range 20 {
		b.event(b.prod, "web", "rollout.step", "step "+string(rune('a'+i)))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("writing events took %v while a receiver hung", d)
	}
	// ok has no filter: it gets production's 20 events and default's two notification.applied.
	slipwaytest.Eventually(t, 10*time.Second, "ok got every event", func() bool { return len(ok.all()) == 22 })
}
