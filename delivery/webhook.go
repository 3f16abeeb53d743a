package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// Webhook headers of the plain form.
const (
	HeaderSignature = "X-Slipway-Signature" // sha256=HEX of HMAC-SHA256(secret, body)
	HeaderDelivery  = "X-Slipway-Delivery"  // a unique ID per delivery
)

// WebhookConfig is what a Webhook handler needs.
type WebhookConfig struct {
	// Secret signs deliveries (GitHub's and the plain form's HMAC) and is GitLab's token.
	Secret []byte
	// Events records refusals and replays (the default environment's store).
	Events func(ctx context.Context, events []slipway.Event) error
	Log    *slog.Logger
}

// WebhookRelease is the plain form of a webhook delivery (POST /hooks/releases with
// X-Slipway-Signature and X-Slipway-Delivery).
type WebhookRelease struct {
	App       string    `json:"app"`
	Version   string    `json:"version"`
	Commit    string    `json:"commit,omitempty"`
	URL       string    `json:"url,omitempty"`
	ChangedAt time.Time `json:"changedAt,omitzero"`
	Fix       bool      `json:"fix,omitempty"`
}

// Hooks takes release webhook deliveries (httpapi.Webhooks serves them at POST
// /hooks/releases): a delivery from GitHub (X-Hub-Signature-256, X-GitHub-Delivery; push,
// tag creation and package events), from GitLab (X-Gitlab-Token, X-Gitlab-Event-UUID; push
// and tag push hooks) or in the plain form (X-Slipway-Signature, X-Slipway-Delivery; a
// WebhookRelease) starts a release. The app is the body's (plain form) or the ?app=
// parameter's. A delivery whose signature or token is missing or wrong is refused
// (EUNAUTHORIZED) and changes nothing but an event that records the refusal; a delivery ID
// or a body seen before is a duplicate and starts nothing.
type Hooks struct {
	m     *Manager
	cfg   WebhookConfig
	limit *refusalLimit
}

var _ slipway.WebhookReceiver = (*Hooks)(nil)

// Webhook returns the receiver of release webhook deliveries.
func (m *Manager) Webhook(cfg WebhookConfig) *Hooks {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Hooks{m: m, cfg: cfg, limit: &refusalLimit{}}
}

// Receive takes one delivery.
func (h *Hooks) Receive(ctx context.Context, d slipway.WebhookDelivery) (slipway.WebhookAnswer, error) {
	m, cfg, header, body := h.m, h.cfg, http.Header(d.Header), d.Body
	source, delivery, err := authenticate(cfg.Secret, header, body)
	if err != nil {
		// Anyone who reaches the endpoint can be refused: a burst of refusals is recorded,
		// then one in a while, with how many were not.
		if ok, dropped := h.limit.take(m.cfg.Now()); ok {
			msg := "webhook delivery refused: " + err.Error()
			if dropped > 0 {
				msg += fmt.Sprintf(" (%d more refused before it not recorded)", dropped)
			}
			m.recordHook(ctx, cfg, slipway.EventWebhookRefused, msg, "")
		}
		return slipway.WebhookAnswer{}, slipway.Errorf(slipway.EUNAUTHORIZED, "%s", err)
	}
	nr, ignored, err := parseDelivery(source, header, d.App, body)
	if err != nil {
		return slipway.WebhookAnswer{}, err
	}
	if ignored != "" {
		return slipway.WebhookAnswer{Ignored: ignored}, nil
	}
	// A replay is the same delivery ID, or the same signed body under another ID (the ID
	// and ?app= are not signed; the body is): each body starts one release at most.
	key := source + ":" + delivery
	bodyKey := "body:" + hex.EncodeToString(bodyMAC(cfg.Secret, body))
	seen, err := m.cfg.Store.SeenDelivery(ctx, key, m.cfg.Now())
	if err == nil && !seen {
		if seen, err = m.cfg.Store.SeenDelivery(ctx, bodyKey, m.cfg.Now()); err == nil && seen {
			_ = m.cfg.Store.ForgetDelivery(context.WithoutCancel(ctx), key)
		}
	}
	if err != nil {
		return slipway.WebhookAnswer{}, slipway.Errorf(slipway.EUNAVAILABLE, "the delivery cannot be recorded: %s", slipway.ErrorMessage(err))
	}
	if seen {
		m.recordHook(ctx, cfg, slipway.EventWebhookDuplicate, fmt.Sprintf("webhook delivery %s from %s seen before; nothing done", delivery, source), nr.App)
		return slipway.WebhookAnswer{Duplicate: true}, nil
	}
	nr.Actor, nr.Source.Trigger = "webhook", "webhook:"+source
	if source == "plain" {
		nr.Source.Trigger = "webhook"
	}
	rel, err := m.CreateRelease(ctx, nr)
	if slipway.ErrorCode(err) == slipway.ECONFLICT {
		// The version is on its way already (a tag pushed and created: two deliveries).
		m.recordHook(ctx, cfg, slipway.EventWebhookDuplicate, fmt.Sprintf("webhook delivery %s from %s: %s; nothing done", delivery, source, slipway.ErrorMessage(err)), nr.App)
		return slipway.WebhookAnswer{Duplicate: true, Release: rel.ID}, nil
	}
	if err != nil {
		// It started nothing: its redelivery (the same ID, once the cause is mended) is not a
		// replay.
		for _, k := range []string{key, bodyKey} {
			if ferr := m.cfg.Store.ForgetDelivery(context.WithoutCancel(ctx), k); ferr != nil {
				cfg.Log.Warn("webhook delivery not forgotten after a failure", "delivery", delivery, "err", ferr)
			}
		}
		return slipway.WebhookAnswer{}, err
	}
	return slipway.WebhookAnswer{Release: rel.ID}, nil
}

// Limits of the webhook.refused events: refusalBurst at once, then one every refusalEvery.
const (
	refusalBurst = 10
	refusalEvery = 6 * time.Second
)

// refusalLimit is a token bucket of webhook.refused events, counting those it drops.
type refusalLimit struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

// take reports whether a refusal at now may be recorded, and how many were dropped since
// the last one recorded.
func (l *refusalLimit) take(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = refusalBurst
	} else if d := now.Sub(l.last); d > 0 {
		l.tokens = min(refusalBurst, l.tokens+float64(d)/float64(refusalEvery))
	}
	if now.After(l.last) {
		l.last = now
	}
	if l.tokens < 1 {
		l.dropped++
		return false, 0
	}
	l.tokens--
	dropped := l.dropped
	l.dropped = 0
	return true, dropped
}

// authenticate checks a delivery's signature or token and returns its source (github,
// gitlab, plain) and delivery ID.
func authenticate(secret []byte, h http.Header, body []byte) (source, delivery string, err error) {
	if len(secret) == 0 {
		return "", "", errors.New("this server has no webhook secret")
	}
	sign := func() []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		return mac.Sum(nil)
	}
	checkSig := func(header, value string) error {
		hexSig, ok := strings.CutPrefix(value, "sha256=")
		got, err := hex.DecodeString(hexSig)
		if !ok || err != nil || !hmac.Equal(got, sign()) {
			return fmt.Errorf("%s does not match the body signed with the secret", header)
		}
		return nil
	}
	switch {
	case h.Get("X-Hub-Signature-256") != "":
		source, delivery = "github", h.Get("X-GitHub-Delivery")
		err = checkSig("X-Hub-Signature-256", h.Get("X-Hub-Signature-256"))
	case h.Get("X-Gitlab-Token") != "":
		source, delivery = "gitlab", h.Get("X-Gitlab-Event-UUID")
		if subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), secret) != 1 {
			err = errors.New("X-Gitlab-Token is not the secret")
		}
	case h.Get(HeaderSignature) != "":
		source, delivery = "plain", h.Get(HeaderDelivery)
		err = checkSig(HeaderSignature, h.Get(HeaderSignature))
	default:
		return "", "", errors.New("no signature: send X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or " + HeaderSignature)
	}
	if err != nil {
		return "", "", err
	}
	if delivery == "" || len(delivery) > 128 {
		return "", "", fmt.Errorf("a %s delivery needs its delivery ID header (at most 128 bytes), to recognise replays", source)
	}
	return source, delivery, nil
}

// parseDelivery reads the release a delivery asks for; ignored says why a delivery starts
// none (a ping, a branch deletion).
func parseDelivery(source string, h http.Header, app string, body []byte) (nr slipway.NewRelease, ignored string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	bad := func(err error) error {
		return slipway.Errorf(slipway.EINVALID, "the %s delivery is not valid JSON of its kind: %v", source, err)
	}
	switch source {
	case "plain":
		var p WebhookRelease
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nr, "", bad(err)
		}
		return slipway.NewRelease{App: p.App, Version: p.Version, Fix: p.Fix, ChangedAt: p.ChangedAt,
			Source: slipway.ReleaseSource{Commit: p.Commit, URL: p.URL}}, "", nil
	case "github":
		var p struct {
			Ref     string `json:"ref"`
			RefType string `json:"ref_type"`
			Deleted bool   `json:"deleted"`
			After   string `json:"after"`
			Head    *struct {
				ID        string    `json:"id"`
				URL       string    `json:"url"`
				Timestamp time.Time `json:"timestamp"`
			} `json:"head_commit"`
			Package *struct {
				Version *struct {
					Version string `json:"version"`
				} `json:"package_version"`
			} `json:"package"`
		}
		if err := dec.Decode(&p); err != nil {
			return nr, "", bad(err)
		}
		nr.App = app
		switch event := h.Get("X-GitHub-Event"); {
		case event == "ping":
			return nr, "ping", nil
		case event == "push" && p.Deleted:
			return nr, "a deleted ref", nil
		case event == "push" && p.Head != nil:
			nr.Source.Commit, nr.Source.URL, nr.ChangedAt = p.Head.ID, p.Head.URL, p.Head.Timestamp
			nr.Version = shortSHA(p.Head.ID)
			if tag, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
				nr.Version = tag
			}
		case event == "create" && p.RefType == "tag":
			nr.Version = p.Ref
		case (event == "package" || event == "registry_package") && p.Package != nil && p.Package.Version != nil:
			nr.Version = p.Package.Version.Version
		default:
			return nr, fmt.Sprintf("GitHub event %q starts no release", event), nil
		}
	case "gitlab":
		var p struct {
			Ref         string `json:"ref"`
			CheckoutSHA string `json:"checkout_sha"`
			Commits     []struct {
				ID        string    `json:"id"`
				URL       string    `json:"url"`
				Timestamp time.Time `json:"timestamp"`
			} `json:"commits"`
		}
		if err := dec.Decode(&p); err != nil {
			return nr, "", bad(err)
		}
		nr.App = app
		event := h.Get("X-Gitlab-Event")
		if (event != "Push Hook" && event != "Tag Push Hook") || p.CheckoutSHA == "" {
			return nr, fmt.Sprintf("GitLab event %q starts no release", event), nil
		}
		nr.Source.Commit, nr.Version = p.CheckoutSHA, shortSHA(p.CheckoutSHA)
		for _, c := range p.Commits {
			if c.ID == p.CheckoutSHA {
				nr.Source.URL, nr.ChangedAt = c.URL, c.Timestamp
			}
		}
		if tag, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
			nr.Version = tag
		}
	}
	if nr.App == "" {
		return nr, "", slipway.Errorf(slipway.EINVALID, "say which app the delivery releases: POST /hooks/releases?app=NAME")
	}
	return nr, "", nil
}

// recordHook stores an event about a delivery; a failure is logged (the answer stands).
func (m *Manager) recordHook(ctx context.Context, cfg WebhookConfig, kind, msg, app string) {
	if cfg.Events == nil {
		return
	}
	ev := slipway.Event{Time: m.cfg.Now(), App: app, Kind: kind, Actor: "webhook", Message: msg}
	if err := cfg.Events(ctx, []slipway.Event{ev}); err != nil {
		cfg.Log.Warn("webhook event not recorded", "err", err)
	}
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// bodyMAC is the HMAC-SHA256 of a delivery's body with the secret: what identifies a body
// whatever its delivery ID.
func bodyMAC(secret, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return mac.Sum(nil)
}
