package httpapi

import (
	"context"
	"net/http"

	"slipway.dev/slipway"
)

// environments serves GET /api/v1/environments: the environments this server serves, with
// their targets (any role).
func (s *Server) environments(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Environments == nil {
		writeJSON(w, http.StatusOK, []slipway.Environment{{Name: slipway.DefaultEnvironment}})
		return
	}
	envs, err := s.cfg.Environments(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envs)
}

// Environments lists the environments the server serves (GET /api/v1/environments).
func (c *Client) Environments(ctx context.Context) ([]slipway.Environment, error) {
	var v []slipway.Environment
	return v, c.get(ctx, "/api/v1/environments", &v)
}
