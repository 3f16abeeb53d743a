package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
)

// envPrefix starts the paths of one environment's API and OFREP: /env/NAME/api/v1/...,
// /env/NAME/ofrep/v1/... Paths without it are the default environment's.
const envPrefix = "/env/"

// routeEnvironments serves /env/NAME/... by environment NAME's handler (with the prefix
// removed) and every other path by def. lookup returns the handler of an environment the
// server serves, or why there is none (ENOTFOUND: an unknown one; EUNAVAILABLE: one that
// could not start), which is answered as a slipway error, never another environment's
// answer. That answer, and an environment's /healthz, go only to a caller gate admits, so
// that which environments exist is not learnt without a credential; a Host a DNS rebinding
// attack sends is refused on every /env/ path.
func routeEnvironments(def http.Handler, gate envGate, lookup func(name string) (http.Handler, error)) http.Handler {
	envs := httpapi.HostGuard(gate.hosts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, envPrefix)
		name, path, _ := strings.Cut(rest, "/")
		if err := slipway.ValidEnvironmentName(name); err != nil {
			// No environment has such a name: this says nothing of those that exist.
			httpapi.WriteError(w, http.StatusBadRequest, &slipway.Error{Code: slipway.EINVALID, Message: slipway.ErrorMessage(err)})
			return
		}
		h, err := lookup(name)
		if (err != nil || path == "healthz") && !gate.admit(w, r, path) {
			return
		}
		if err != nil {
			code := slipway.ErrorCode(err)
			httpapi.WriteError(w, httpapi.HTTPStatus(code), &slipway.Error{Code: code, Message: slipway.ErrorMessage(err)})
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + path
		r2.URL.RawPath = ""
		h.ServeHTTP(w, r2.WithContext(slipway.WithEnvironment(r.Context(), name)))
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, envPrefix) {
			def.ServeHTTP(w, r)
			return
		}
		envs.ServeHTTP(w, r)
	})
}

// envGate stands in for an environment's API and OFREP where there is none to answer: it
// asks for the credential they would (an API token; an OFREP key when the server has
// any), so that a request about an environment that does not exist, or that could not
// start, is refused without one exactly as one about a served environment is.
type envGate struct {
	// hosts are the names the Host header may give (--allowed-host).
	hosts []string
	// tokens authenticates API tokens.
	tokens slipway.TokenManager
	// ofrepKeys are the OFREP keys (--ofrep-key); none: OFREP is open, and so is which
	// environments it serves.
	ofrepKeys []string
}

// admit reports whether r carries the credential path (under /env/NAME/) needs, or writes
// the refusal and reports false.
func (g envGate) admit(w http.ResponseWriter, r *http.Request, path string) bool {
	if path == "ofrep" || strings.HasPrefix(path, "ofrep/") {
		if g.ofrepKey(r) {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ofrep"`)
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	refuse := func(msg string) bool {
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
		httpapi.WriteError(w, http.StatusUnauthorized, &slipway.Error{Code: slipway.EUNAUTHORIZED, Message: msg})
		return false
	}
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return refuse("this API needs a token: send Authorization: Bearer TOKEN (the CLI reads --token or SLIPWAY_TOKEN, or finds the local server's admin token)")
	}
	if g.tokens == nil {
		return refuse("this server has no token store; every request is refused")
	}
	if _, err := g.tokens.Authenticate(r.Context(), secret); err != nil {
		if code := slipway.ErrorCode(err); code != slipway.EUNAUTHORIZED {
			httpapi.WriteError(w, httpapi.HTTPStatus(code), &slipway.Error{Code: code, Message: slipway.ErrorMessage(err)})
			return false
		}
		return refuse(slipway.ErrorMessage(err))
	}
	return true
}

// ofrepKey reports whether r carries one of the OFREP keys (X-API-Key, or Authorization:
// Bearer), or the server has none; every key is compared, in constant time.
func (g envGate) ofrepKey(r *http.Request) bool {
	if len(g.ofrepKeys) == 0 {
		return true
	}
	cred := r.Header.Get("X-API-Key")
	if scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " "); cred == "" && ok && strings.EqualFold(scheme, "Bearer") {
		cred = strings.TrimSpace(secret)
	}
	if cred == "" {
		return false
	}
	sum := sha256.Sum256([]byte(cred))
	found := false
	for _, k := range g.ofrepKeys {
		ks := sha256.Sum256([]byte(k))
		if subtle.ConstantTimeCompare(sum[:], ks[:]) == 1 {
			found = true
		}
	}
	return found
}

// serverFor returns the base address of environment env on server (server itself for the
// default environment).
func serverFor(server, env string) string {
	if env == "" || env == slipway.DefaultEnvironment {
		return server
	}
	return strings.TrimRight(server, "/") + envPrefix + env
}
