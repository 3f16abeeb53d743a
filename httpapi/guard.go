package httpapi

import (
	"context"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// The checks every API request passes, in this order, before a route runs (ServeHTTP):
//
//  1. Host: the Host header names this server (hostHandler), so that a DNS name pointed at
//     127.0.0.1 by an attacker (DNS rebinding) cannot reach it from a browser.
//  2. Origin: a request a browser sends from a page carries Origin (and Sec-Fetch-Site); one
//     from another site is refused unless its origin is allowed.
//  3. Content type: a request that changes something must say application/json, which a
//     cross-site form or a "simple" fetch cannot send without a CORS preflight (which this
//     server never grants).
//  4. Token: Authorization: Bearer SECRET names an active token; its name is the actor of
//     every event the request causes, and its role and scope decide what it may do
//     (allow, per route).
//
// GET /healthz alone skips them: it says only whether the server can write its store.

// callerKey is the context key of the authenticated token of a request; secretKey that of
// the secret it was authenticated with, for streams to check again (stillValid).
type (
	callerKey struct{}
	secretKey struct{}
)

// DefaultReauth is how often a long-lived stream checks that its token is still valid
// (Config.Reauth): a token revoked or expired while a stream is open ends the stream within
// this long, or within the heartbeat when the stream is idle.
const DefaultReauth = 5 * time.Second

// stillValid reports whether the token that opened the stream of ctx is still active.
func (s *Server) stillValid(ctx context.Context) bool {
	secret, _ := ctx.Value(secretKey{}).(string)
	if s.cfg.Tokens == nil || secret == "" {
		return false
	}
	_, err := s.cfg.Tokens.Authenticate(ctx, secret)
	return err == nil
}

// reauth checks the stream's token again once reauthEvery has passed since *last; false
// means the stream must end.
func (s *Server) reauth(ctx context.Context, last *time.Time) bool {
	if time.Since(*last) < s.cfg.Reauth {
		return true
	}
	*last = time.Now()
	return s.stillValid(ctx)
}

// caller returns the token that authenticated r; ok is false before authentication.
func caller(r *http.Request) (slipway.Token, bool) {
	t, ok := r.Context().Value(callerKey{}).(slipway.Token)
	return t, ok
}

// actor names who asks for a change: the authenticated token, never a name the client chose.
func actor(r *http.Request) string {
	if t, ok := caller(r); ok {
		return t.Name
	}
	return "unknown"
}

// HostGuard returns next behind the Host check of ServeHTTP, for handlers served beside the
// API on the same listener (metrics, OFREP). hosts are names allowed besides IP addresses and
// localhost.
func HostGuard(hosts []string, next http.Handler) http.Handler {
	allowed := hostSet(hosts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkHost(allowed, r.Host); err != nil {
			WriteError(w, http.StatusForbidden, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hostSet(hosts []string) map[string]bool {
	m := map[string]bool{"localhost": true}
	for _, h := range hosts {
		m[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	return m
}

// checkHost allows a Host header that is an IP address (a browser that reaches the server by
// address cannot be rebound), localhost, or a configured name. DNS rebinding needs a name the
// attacker controls, which is never on the list.
func checkHost(allowed map[string]bool, host string) *slipway.Error {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	if name == "" {
		return slipway.Errorf(slipway.EFORBIDDEN, "the request names no Host")
	}
	if net.ParseIP(name) != nil || allowed[name] {
		return nil
	}
	return slipway.Errorf(slipway.EFORBIDDEN, "host %q is not a name of this server; start the server with --allowed-host %s if it is", truncateText(host, 100), truncateText(name, 100))
}

// checkOrigin refuses a browser request from another site: an Origin other than the
// server's own (same scheme, host and port as the request) or an allowed one, and a
// Sec-Fetch-Site of cross-site or same-site without such an Origin.
func (s *Server) checkOrigin(r *http.Request) *slipway.Error {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if s.origins[strings.ToLower(origin)] {
			return nil
		}
		if !s.sameOrigin(r, origin) {
			return slipway.Errorf(slipway.EFORBIDDEN, "requests from origin %q are not allowed; start the server with --allowed-origin %s to allow them", truncateText(origin, 100), truncateText(origin, 100))
		}
		return nil
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return slipway.Errorf(slipway.EFORBIDDEN, "cross-site browser requests are not allowed")
}

// sameOrigin reports whether origin is the origin the request was sent to.
func (s *Server) sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// checkContentType requires a JSON body on every request that may change something.
func checkContentType(r *http.Request) *slipway.Error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return slipway.Errorf(slipway.EINVALID, "a %s request must have Content-Type: application/json (got %q)", r.Method, truncateText(r.Header.Get("Content-Type"), 100))
	}
	return nil
}

// authenticate reads the bearer token of r and returns it with its secret. A missing or bad
// one is EUNAUTHORIZED.
func (s *Server) authenticate(r *http.Request) (slipway.Token, string, error) {
	if s.cfg.Tokens == nil {
		return slipway.Token{}, "", slipway.Errorf(slipway.EUNAUTHORIZED, "this server has no token store; every request is refused")
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return slipway.Token{}, "", slipway.Errorf(slipway.EUNAUTHORIZED, "this API needs a token: send Authorization: Bearer TOKEN (the CLI reads --token or SLIPWAY_TOKEN, or finds the local server's admin token)")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return slipway.Token{}, "", slipway.Errorf(slipway.EUNAUTHORIZED, "the Authorization header must be Bearer TOKEN")
	}
	t, err := s.cfg.Tokens.Authenticate(r.Context(), secret)
	return t, secret, err
}

// guard runs checks 1-4 on r and returns r with its caller and peer in the context, or
// writes the refusal and returns nil.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) *http.Request {
	if err := checkHost(s.hosts, r.Host); err != nil {
		WriteError(w, http.StatusForbidden, err)
		return nil
	}
	if err := s.checkOrigin(r); err != nil {
		WriteError(w, http.StatusForbidden, err)
		return nil
	}
	if err := checkContentType(r); err != nil {
		WriteError(w, http.StatusUnsupportedMediaType, err)
		return nil
	}
	tok, secret, err := s.authenticate(r)
	if err != nil {
		if slipway.ErrorCode(err) == slipway.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
		}
		s.fail(w, r, err)
		return nil
	}
	ctx := context.WithValue(r.Context(), callerKey{}, tok)
	ctx = context.WithValue(ctx, secretKey{}, secret)
	ctx = slipway.WithPeer(ctx, r.RemoteAddr)
	return r.WithContext(ctx)
}

// allow wraps h so that it runs only for a caller with permission p; the app, when the
// route names one, is its {app} path value.
func (s *Server) allow(p slipway.Permission, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.permit(r, p, r.PathValue("app")); err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

// permit returns nil when r's caller may do p to app.
func (s *Server) permit(r *http.Request, p slipway.Permission, app string) error {
	t, ok := caller(r)
	if !ok {
		return slipway.Errorf(slipway.EUNAUTHORIZED, "the request is not authenticated")
	}
	return t.Allow(p, app)
}

// permitSet returns nil when r's caller may apply s: each app within its scope, and
// templates, flag sets and pruning (which touch what belongs to no one app) only with an
// unlimited scope.
func (s *Server) permitSet(r *http.Request, set slipway.Set, prune bool) error {
	for _, a := range set.Apps {
		if err := s.permit(r, slipway.PermDeploy, a.Name); err != nil {
			return err
		}
	}
	// Templates, flag sets, environments and pipelines belong to no one app.
	if len(set.Templates) > 0 || len(set.FlagSets) > 0 || len(set.Environments) > 0 || len(set.Pipelines) > 0 || len(set.Notifications) > 0 || prune {
		return s.permit(r, slipway.PermDeployShared, "")
	}
	if len(set.Apps) == 0 {
		// Applying nothing changes nothing, but it is still an apply.
		return s.permit(r, slipway.PermDeployShared, "")
	}
	return nil
}

// decodeRequest decodes r's body into v (which may be empty when optional) and checks the
// reason it gives (*reason, a field of v); on a problem it answers and reports false.
func (s *Server) decodeRequest(w http.ResponseWriter, r *http.Request, v any, reason *string, optional bool) bool {
	if err := decodeBody(w, r, v, optional); err != nil {
		s.fail(w, r, err)
		return false
	}
	if err := checkReason(*reason); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

// checkReason bounds the free-text reason a client gives.
func checkReason(reason string) error {
	if len(reason) > slipway.MaxReasonLen {
		return slipway.Errorf(slipway.EINVALID, "reason is %d bytes; at most %d", len(reason), slipway.MaxReasonLen)
	}
	return nil
}

// truncateText cuts s to n bytes for an error message.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
