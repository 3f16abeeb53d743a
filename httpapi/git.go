package httpapi

import (
	"context"
	"net/http"

	"slipway.dev/slipway"
)

// gitRoutes adds POST /api/v1/git/sync when the server watches a git repository: it looks
// at the watched branch now (rather than at the next poll) and answers what it did. It
// applies whatever the branch holds, so it needs a deployer of every app (an unlimited
// scope), as an apply of shared documents does.
func (s *Server) gitRoutes() {
	if s.cfg.Git == nil {
		return
	}
	s.mux.HandleFunc("POST /api/v1/git/sync", s.allow(slipway.PermDeployShared, s.gitSync))
}

func (s *Server) gitSync(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeBody(w, r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Git.Sync(r.Context())
	s.reply(w, r, v, err)
}

// GitSync asks the server to look at its watched git branch now (POST /api/v1/git/sync).
func (c *Client) GitSync(ctx context.Context) (slipway.GitSync, error) {
	var v slipway.GitSync
	return v, c.do(ctx, http.MethodPost, "/api/v1/git/sync", struct{}{}, &v)
}
