package delivery_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/delivery"
	"slipway.dev/slipway/httpapi"
)

const secret = "s3cret-for-hooks"

func sign(body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// TestWebhook_StartsReleasesFromSignedDeliveriesOnly: signed deliveries in the plain form,
// from GitHub and from GitLab start releases with their source; a replayed delivery starts
// none; a missing or wrong signature or token is refused with 401, recorded as an event,
// and starts nothing; pings and other events are acknowledged and ignored.
func TestWebhook_StartsReleasesFromSignedDeliveriesOnly(t *testing.T) {
	w := newWorld(t, "staging")
	w.app("web")
	w.pipelines(slipway.Pipeline{Name: "web", Apps: []string{"web"}, Stages: []slipway.Stage{{Name: "staging", Environments: []string{"staging"}}}})
	h := httpapi.Webhooks(nil, w.m.Webhook(delivery.WebhookConfig{Secret: []byte(secret), Events: func(ctx context.Context, evs []slipway.Event) error {
		return w.store.Commit(ctx, &slipway.Change{Events: evs})
	}}))
	post := func(query, body string, headers map[string]string) (int, slipway.WebhookAnswer, string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/hooks/releases"+query, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var a slipway.WebhookAnswer
		_ = json.Unmarshal(rec.Body.Bytes(), &a)
		return rec.Code, a, rec.Body.String()
	}
	releases := func() int {
		rs, err := w.m.Releases(context.Background(), "web", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}

	plain := `{"app":"web","version":"v2","commit":"9f1c2ab","url":"https://ci.example/1"}`
	code, a, body := post("", plain, map[string]string{delivery.HeaderSignature: sign(plain), delivery.HeaderDelivery: "d-1"})
	if code != http.StatusCreated || a.Release != "web-r1" {
		t.Fatalf("plain delivery: %d %s", code, body)
	}
	r, err := w.m.Release(context.Background(), "web-r1")
	if err != nil || r.Source.Trigger != "webhook" || r.Source.Commit != "9f1c2ab" || r.CreatedBy != "webhook" {
		t.Fatalf("release from the plain delivery: %+v, %v", r, err)
	}
	if code, a, _ := post("", plain, map[string]string{delivery.HeaderSignature: sign(plain), delivery.HeaderDelivery: "d-1"}); code != http.StatusOK || !a.Duplicate {
		t.Fatalf("replay: %d %+v", code, a)
	}
	// The same signed body under another delivery ID is a replay too: the ID is not signed.
	if code, a, _ := post("", plain, map[string]string{delivery.HeaderSignature: sign(plain), delivery.HeaderDelivery: "D-1"}); code != http.StatusOK || !a.Duplicate {
		t.Fatalf("replay under a new delivery ID: %d %+v", code, a)
	}
	for name, headers := range map[string]map[string]string{
		"no signature":       {delivery.HeaderDelivery: "d-2"},
		"wrong signature":    {delivery.HeaderSignature: sign(plain + " "), delivery.HeaderDelivery: "d-3"},
		"not hex":            {delivery.HeaderSignature: "sha256=zz", delivery.HeaderDelivery: "d-4"},
		"wrong gitlab token": {"X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "g-0"},
		"github, no id":      {"X-Hub-Signature-256": sign(plain), "X-GitHub-Event": "push"},
	} {
		if code, _, body := post("?app=web", plain, headers); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s; want 401", name, code, body)
		}
	}
	if n := releases(); n != 1 {
		t.Fatalf("%d releases after the refused and replayed deliveries; want 1", n)
	}
	evs, _ := w.store.Events(context.Background(), slipway.EventFilter{})
	refused := 0
	for _, e := range evs {
		if e.Kind == slipway.EventWebhookRefused {
			refused++
		}
	}
	if refused != 5 {
		t.Errorf("%d webhook.refused events; want 5", refused)
	}

	gh := `{"ref":"refs/heads/main","after":"abcdef0123456789","head_commit":{"id":"abcdef0123456789abcd","url":"https://github.example/c/abcdef0","timestamp":"2026-12-07T09:30:00Z"}}`
	code, a, body = post("?app=web", gh, map[string]string{"X-Hub-Signature-256": sign(gh), "X-GitHub-Event": "push", "X-GitHub-Delivery": "gh-1"})
	if code != http.StatusCreated {
		t.Fatalf("github push: %d %s", code, body)
	}
	r, _ = w.m.Release(context.Background(), a.Release)
	if r.Version != "abcdef012345" || r.Source.Trigger != "webhook:github" || r.Source.Commit != "abcdef0123456789abcd" || r.ChangedAt.Format("15:04") != "09:30" {
		t.Fatalf("release from the github push: %+v", r)
	}
	// A tag pushed and created is two deliveries of one version: one release.
	tagPush := `{"ref":"refs/tags/v7","after":"7777777777777777","head_commit":{"id":"7777777777777777aaaa","url":"https://github.example/c/7","timestamp":"2026-12-07T10:00:00Z"}}`
	tagCreate := `{"ref":"v7","ref_type":"tag"}`
	if code, a, body := post("?app=web", tagPush, map[string]string{"X-Hub-Signature-256": sign(tagPush), "X-GitHub-Event": "push", "X-GitHub-Delivery": "gh-t1"}); code != http.StatusCreated {
		t.Fatalf("tag push: %d %+v %s", code, a, body)
	}
	if code, a, body := post("?app=web", tagCreate, map[string]string{"X-Hub-Signature-256": sign(tagCreate), "X-GitHub-Event": "create", "X-GitHub-Delivery": "gh-t2"}); code != http.StatusOK || !a.Duplicate {
		t.Fatalf("tag create after its push: %d %+v %s; want a duplicate", code, a, body)
	}
	if code, a, _ := post("?app=web", `{"zen":"hi"}`, map[string]string{"X-Hub-Signature-256": sign(`{"zen":"hi"}`), "X-GitHub-Event": "ping", "X-GitHub-Delivery": "gh-2"}); code != http.StatusOK || a.Ignored != "ping" {
		t.Fatalf("github ping: %d %+v", code, a)
	}
	gl := `{"ref":"refs/tags/v3.1.0","checkout_sha":"0123456789abcdef0123","commits":[{"id":"0123456789abcdef0123","url":"https://gitlab.example/c/0123","timestamp":"2026-12-07T08:00:00Z"}]}`
	code, a, body = post("?app=web", gl, map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Event-UUID": "gl-1"})
	if code != http.StatusCreated {
		t.Fatalf("gitlab tag push: %d %s", code, body)
	}
	if r, _ := w.m.Release(context.Background(), a.Release); r.Version != "v3.1.0" || r.Source.Trigger != "webhook:gitlab" {
		t.Fatalf("release from the gitlab tag: %+v", r)
	}
	if code, _, body := post("", plain, map[string]string{delivery.HeaderSignature: sign(plain + strings.Repeat(" ", slipway.MaxWebhookBody)), delivery.HeaderDelivery: "big"}); code != http.StatusUnauthorized {
		t.Errorf("a mismatched body: %d %s", code, body)
	}
	big := strings.Repeat("x", slipway.MaxWebhookBody+1)
	if code, _, _ := post("", big, map[string]string{delivery.HeaderSignature: sign(big), delivery.HeaderDelivery: "big"}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized body: %d; want 413", code)
	}
	if code, _, body := post("", `{"app":"web"}`, map[string]string{delivery.HeaderSignature: sign(`{"app":"web"}`), delivery.HeaderDelivery: "d-9"}); code != http.StatusBadRequest || !strings.Contains(body, "version") {
		t.Errorf("a delivery without a version: %d %s", code, body)
	}
}
