package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Headers of a post.
const (
	HeaderSignature = "X-Slipway-Signature" // sha256=HEX of HMAC-SHA256(secret, body)
	HeaderDelivery  = "X-Slipway-Delivery"  // NOTIFICATION/ENVIRONMENT/SEQ: the same for every attempt
	HeaderEvent     = "X-Slipway-Event"     // the event's kind
)

// batch is how many events a sender reads at once.
const batch = 100

// sender posts one environment's matching events to one notification's URL.
type sender struct {
	n   *Notifier
	sub slipway.Notification
	src Source
}

// JSONPayload is the body of a json notification.
type JSONPayload struct {
	Environment string        `json:"environment"`
	Event       slipway.Event `json:"event"`
}

// SlackPayload is the body of a slack notification.
type SlackPayload struct {
	Text string `json:"text"`
}

func (s *sender) run(ctx context.Context) {
	log := s.n.cfg.Log.With("notification", s.sub.Name, "environment", s.src.Environment)
	t := time.NewTicker(s.n.cfg.Poll)
	defer t.Stop()
	for {
		if err := s.pass(ctx); err != nil && ctx.Err() == nil {
			log.Warn("notification pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass sends every event after the cursor, in order, until none is left.
func (s *sender) pass(ctx context.Context) error {
	store := s.n.cfg.Store
	for {
		cursor, _, err := store.NotifyCursor(ctx, s.sub.Name, s.src.Environment)
		if err != nil {
			return err
		}
		evs, err := s.src.Events(ctx, slipway.EventFilter{After: cursor, Limit: batch})
		if err != nil {
			return err
		}
		var skipped int64
		for _, ev := range evs {
			if !matches(s.sub, s.src.Environment, ev) {
				skipped = ev.Seq
				continue
			}
			if skipped > 0 {
				if err := store.SetNotifyCursor(ctx, s.sub.Name, s.src.Environment, skipped); err != nil {
					return err
				}
				skipped = 0
			}
			d := s.deliver(ctx, ev)
			if d.Status != "delivered" && ctx.Err() != nil {
				return ctx.Err() // stopped while it failed: the next sender tries it again
			}
			// A delivered event is recorded even when the sender is stopping, so that the
			// next one does not send it again.
			if err := store.RecordDelivery(context.WithoutCancel(ctx), d); err != nil {
				return err
			}
		}
		if skipped > 0 {
			if err := store.SetNotifyCursor(ctx, s.sub.Name, s.src.Environment, skipped); err != nil {
				return err
			}
		}
		if len(evs) < batch {
			return nil
		}
	}
}

// deliver posts ev, retrying with backoff, and says how it went.
func (s *sender) deliver(ctx context.Context, ev slipway.Event) slipway.NotificationDelivery {
	d := slipway.NotificationDelivery{Notification: s.sub.Name, Environment: s.src.Environment, Seq: ev.Seq, Kind: ev.Kind}
	wait := s.n.cfg.Backoff
	for d.Attempts = 1; ; d.Attempts++ {
		code, err := s.post(ctx, ev)
		d.Code, d.Time = code, s.n.cfg.Now()
		if err == nil {
			d.Status, d.Error = "delivered", ""
			return d
		}
		d.Status, d.Error = "failed", truncate(err.Error(), 500)
		if d.Attempts >= s.n.cfg.Attempts || ctx.Err() != nil || !retryable(code, err) {
			return d
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return d
		case <-t.C:
		}
		wait = min(2*wait, MaxBackoff)
	}
}

// retryable says whether a failed post may succeed later: a transport error, 408, 429 and
// 5xx may; a URL or secret that cannot be read, and other 4xx, will not.
func retryable(code int, err error) bool {
	var perm *permanent
	if errors.As(err, &perm) {
		return false
	}
	return code == 0 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// permanent is a failure that retrying cannot mend.
type permanent struct{ msg string }

func (p *permanent) Error() string { return p.msg }

// post sends ev once; it returns the status code (0 when none came back).
func (s *sender) post(ctx context.Context, ev slipway.Event) (int, error) {
	url, err := s.secret(s.sub.URL, s.sub.URLFrom)
	if err != nil {
		return 0, &permanent{"the URL: " + err.Error()}
	}
	var body []byte
	switch s.sub.Format {
	case slipway.NotifySlack:
		body, err = json.Marshal(SlackPayload{Text: slackText(s.src.Environment, ev)})
	default:
		body, err = json.Marshal(JSONPayload{Environment: s.src.Environment, Event: ev})
	}
	if err != nil {
		return 0, &permanent{err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, &permanent{"the URL is not valid"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "slipway-notify")
	req.Header.Set(HeaderDelivery, s.sub.Name+"/"+s.src.Environment+"/"+strconv.FormatInt(ev.Seq, 10))
	req.Header.Set(HeaderEvent, ev.Kind)
	if s.sub.SecretFrom != nil {
		secret, err := s.secret("", s.sub.SecretFrom)
		if err != nil {
			return 0, &permanent{"the secret: " + err.Error()}
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req.Header.Set(HeaderSignature, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := s.n.cfg.Client.Do(req)
	if err != nil {
		// The URL may hold a secret (an incoming webhook's): say what failed without it.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return 0, fmt.Errorf("post: %s", redact(err.Error(), url))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// secret returns value, or reads it from from (an environment variable or a file).
func (s *sender) secret(value string, from *slipway.SecretFrom) (string, error) {
	switch {
	case from == nil:
		return value, nil
	case from.Env != "":
		v := strings.TrimSpace(s.n.cfg.Getenv(from.Env))
		if v == "" {
			return "", fmt.Errorf("the server's environment variable %s is empty", from.Env)
		}
		return v, nil
	case from.File != "":
		b, err := s.n.cfg.ReadFile(from.File)
		if err != nil {
			return "", fmt.Errorf("cannot read %s", from.File)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty", from.File)
		}
		return v, nil
	}
	return "", errors.New("names neither env nor file")
}

// slackText is one line for people: [environment] app: message (kind), reason.
func slackText(env string, ev slipway.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]", env)
	if ev.App != "" {
		fmt.Fprintf(&b, " %s:", ev.App)
	}
	fmt.Fprintf(&b, " %s (%s", ev.Message, ev.Kind)
	if ev.Actor != "" {
		fmt.Fprintf(&b, ", by %s", ev.Actor)
	}
	b.WriteString(")")
	if ev.Reason != "" {
		fmt.Fprintf(&b, ": %s", ev.Reason)
	}
	return b.String()
}

// redact removes url from s.
func redact(s, url string) string {
	if url == "" {
		return s
	}
	return strings.ReplaceAll(s, url, "<notification URL>")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
