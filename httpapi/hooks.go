package httpapi

import (
	"errors"
	"io"
	"net/http"

	"slipway.dev/slipway"
)

// Webhooks returns the handler of POST /hooks/releases: the sender signs a delivery instead
// of sending a token (slipway.WebhookReceiver checks it), so it is served beside the API,
// behind the same Host check. Bodies are capped at slipway.MaxWebhookBody (413 above it);
// 201 answers a delivery that started a release, 200 a duplicate or an ignored one, and a
// refusal gets the status of its error's code (401 for a bad signature).
func Webhooks(hosts []string, recv slipway.WebhookReceiver) http.Handler {
	return HostGuard(hosts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			WriteError(w, http.StatusMethodNotAllowed, &slipway.Error{Code: CodeMethodNotAllowed, Message: "use POST"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, slipway.MaxWebhookBody))
		if err != nil {
			WriteError(w, http.StatusRequestEntityTooLarge, slipway.Errorf(slipway.EINVALID, "the body is over %d bytes", slipway.MaxWebhookBody))
			return
		}
		ctx := slipway.WithPeer(r.Context(), r.RemoteAddr)
		a, err := recv.Receive(ctx, slipway.WebhookDelivery{Header: r.Header, App: r.URL.Query().Get("app"), Body: body})
		if err != nil {
			// The domain error as it is (with its details), or an internal one told as such.
			var e *slipway.Error
			if !errors.As(err, &e) || HTTPStatus(e.Code) == http.StatusInternalServerError {
				e = slipway.Errorf(slipway.EINTERNAL, "internal error")
			}
			WriteError(w, HTTPStatus(e.Code), e)
			return
		}
		status := http.StatusOK
		if a.Release != "" && !a.Duplicate {
			status = http.StatusCreated
		}
		writeJSON(w, status, a)
	}))
}
