package main

import (
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
// answer.
func routeEnvironments(def http.Handler, lookup func(name string) (http.Handler, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, envPrefix)
		if !ok {
			def.ServeHTTP(w, r)
			return
		}
		name, path, _ := strings.Cut(rest, "/")
		if err := slipway.ValidEnvironmentName(name); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, &slipway.Error{Code: slipway.EINVALID, Message: slipway.ErrorMessage(err)})
			return
		}
		h, err := lookup(name)
		if err != nil {
			code := slipway.ErrorCode(err)
			httpapi.WriteError(w, httpapi.HTTPStatus(code), &slipway.Error{Code: code, Message: slipway.ErrorMessage(err)})
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + path
		r2.URL.RawPath = ""
		h.ServeHTTP(w, r2.WithContext(slipway.WithEnvironment(r.Context(), name)))
	})
}

// serverFor returns the base address of environment env on server (server itself for the
// default environment).
func serverFor(server, env string) string {
	if env == "" || env == slipway.DefaultEnvironment {
		return server
	}
	return strings.TrimRight(server, "/") + envPrefix + env
}
