package delivery_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/delivery"
	"slipway.dev/slipway/httpapi"
)

// hookPoster posts to a Webhook handler over real HTTP.
func hookPoster(t *testing.T, h http.Handler) func(query, body string, headers map[string]string) (int, string) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return func(query, body string, headers map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/hooks/releases"+query, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
}

// TestWebhook_FailedDeliveryIsNotAReplay: a signed delivery that starts no release (its app
// is not in a pipeline yet) must not be remembered as seen, or its redelivery — with the
// same delivery ID, once the operator has fixed the pipeline — is answered "duplicate" and
// the release is lost.
func TestWebhook_FailedDeliveryIsNotAReplay(t *testing.T) {
	w := newWorld(t, "staging")
	w.app("web")
	post := hookPoster(t, httpapi.Webhooks(nil, w.m.Webhook(delivery.WebhookConfig{Secret: []byte(secret)})))
	plain := `{"app":"web","version":"v2"}`
	headers := map[string]string{delivery.HeaderSignature: sign(plain), delivery.HeaderDelivery: "d-1"}
	if code, body := post("", plain, headers); code != http.StatusNotFound {
		t.Fatalf("a delivery for an app in no pipeline: %d %s; want 404", code, body)
	}
	w.pipelines(slipway.Pipeline{Name: "web", Apps: []string{"web"}, Stages: []slipway.Stage{{Name: "staging", Environments: []string{"staging"}}}})
	if code, body := post("", plain, headers); code != http.StatusCreated {
		t.Fatalf("the redelivery after the pipeline was applied: %d %s; want 201", code, body)
	}
	if code, body := post("", plain, headers); code != http.StatusOK || !strings.Contains(body, `"duplicate":true`) {
		t.Fatalf("a replay of the delivery that started a release: %d %s; want a duplicate", code, body)
	}
}

// TestWebhook_RefusalsCannotFloodTheEventLog: anyone who can reach the endpoint can send
// unsigned deliveries; each must not add an event to the durable log (and to every
// notification that follows it). A burst is recorded, the rest counted into the next
// event once the limit allows one again.
func TestWebhook_RefusalsCannotFloodTheEventLog(t *testing.T) {
	w := newWorld(t, "staging")
	post := hookPoster(t, httpapi.Webhooks(nil, w.m.Webhook(delivery.WebhookConfig{Secret: []byte(secret), Events: func(ctx context.Context, evs []slipway.Event) error {
		return w.store.Commit(ctx, &slipway.Change{Events: evs})
	}})))
	refused := func() []slipway.Event {
		t.Helper()
		evs, err := w.store.Events(context.Background(), slipway.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []slipway.Event
		for _, e := range evs {
			if e.Kind == slipway.EventWebhookRefused {
				out = append(out, e)
			}
		}
		return out
	}
	for range 200 {
		if code, body := post("", `{}`, map[string]string{delivery.HeaderSignature: "sha256=00", delivery.HeaderDelivery: "x"}); code != http.StatusUnauthorized {
			t.Fatalf("unsigned delivery: %d %s", code, body)
		}
	}
	n := len(refused())
	if n == 0 || n > 20 {
		t.Fatalf("%d webhook.refused events after 200 refusals; want a few (at least 1, at most 20)", n)
	}
	w.clock.Advance(time.Hour)
	post("", `{}`, map[string]string{delivery.HeaderSignature: "sha256=00", delivery.HeaderDelivery: "x"})
	evs := refused()
	if len(evs) != n+1 || !strings.Contains(evs[len(evs)-1].Message, "not recorded") {
		t.Fatalf("after the limit allowed one again: %d events, last %q; want %d, saying how many were not recorded", len(evs), evs[len(evs)-1].Message, n+1)
	}
}
