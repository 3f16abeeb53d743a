package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"slipway.dev/slipway"
)

// ReleaseRequest is the optional body of POST /api/v1/releases/{id}/approve and /override.
type ReleaseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// releaseRoutes adds the pipeline and release routes when the config has them.
func (s *Server) releaseRoutes() {
	if s.cfg.Releases == nil {
		return
	}
	m := s.mux
	m.HandleFunc("GET /api/v1/pipelines", s.allow(slipway.PermRead, s.pipelines))
	m.HandleFunc("GET /api/v1/pipelines/{name}", s.allow(slipway.PermRead, s.pipelineStatus))
	m.HandleFunc("GET /api/v1/releases", s.allow(slipway.PermRead, s.releases))
	m.HandleFunc("GET /api/v1/releases/{id}", s.allow(slipway.PermRead, s.release))
	// Creating a release is checked against the caller's scope for its app (createRelease).
	m.HandleFunc("POST /api/v1/releases", s.allow(slipway.PermRead, s.createRelease))
	m.HandleFunc("POST /api/v1/releases/{id}/approve", s.allow(slipway.PermDeploy, s.approveRelease))
	m.HandleFunc("POST /api/v1/releases/{id}/override", s.allow(slipway.PermAdmin, s.overrideRelease))
}

func (s *Server) pipelines(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Releases.Pipelines(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) pipelineStatus(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Releases.PipelineStatus(r.Context(), r.PathValue("name"))
	s.reply(w, r, v, err)
}

func (s *Server) releases(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Releases.Releases(r.Context(), r.URL.Query().Get("app"), int(limit))
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Releases.Release(r.Context(), r.PathValue("id"))
	s.reply(w, r, v, err)
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request) {
	var req slipway.NewRelease
	if !s.decodeRequest(w, r, &req, &req.Reason, false) {
		return
	}
	if err := s.permit(r, slipway.PermDeploy, req.App); err != nil {
		s.fail(w, r, err)
		return
	}
	req.Actor = actor(r)
	if req.Source.Trigger == "" || req.Source.Trigger == "api" || req.Source.Trigger == "cli" {
		// The CLI says it is the CLI; anything else said over the API is the API.
		if req.Source.Trigger != "cli" {
			req.Source.Trigger = "api"
		}
	} else {
		s.fail(w, r, slipway.Errorf(slipway.EINVALID, "source.trigger %q is set by slipway; leave it out", req.Source.Trigger))
		return
	}
	v, err := s.cfg.Releases.CreateRelease(r.Context(), req)
	if err == nil {
		w.Header().Set("Location", "/api/v1/releases/"+url.PathEscape(v.ID))
	}
	s.reply(w, r, v, err)
}

func (s *Server) approveRelease(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !s.decodeRequest(w, r, &req, &req.Reason, true) {
		return
	}
	t, _ := caller(r)
	id := r.PathValue("id")
	rel, err := s.cfg.Releases.Release(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.permit(r, slipway.PermDeploy, rel.App); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Releases.Approve(r.Context(), id, actor(r), t.Role, req.Reason)
	s.reply(w, r, v, err)
}

func (s *Server) overrideRelease(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !s.decodeRequest(w, r, &req, &req.Reason, false) {
		return
	}
	v, err := s.cfg.Releases.Override(r.Context(), r.PathValue("id"), actor(r), req.Reason)
	s.reply(w, r, v, err)
}

// Pipelines lists the pipelines (GET /api/v1/pipelines).
func (c *Client) Pipelines(ctx context.Context) ([]slipway.Pipeline, error) {
	var v []slipway.Pipeline
	return v, c.get(ctx, "/api/v1/pipelines", &v)
}

// PipelineStatus says where each stage of a pipeline stands (GET /api/v1/pipelines/{name}).
func (c *Client) PipelineStatus(ctx context.Context, name string) (slipway.PipelineStatus, error) {
	var v slipway.PipelineStatus
	return v, c.get(ctx, "/api/v1/pipelines/"+url.PathEscape(name), &v)
}

// Releases lists releases newest first, of app when it is not "" (GET /api/v1/releases).
func (c *Client) Releases(ctx context.Context, app string, limit int) ([]slipway.Release, error) {
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var v []slipway.Release
	path := "/api/v1/releases"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return v, c.get(ctx, path, &v)
}

// Release returns one release (GET /api/v1/releases/{id}).
func (c *Client) Release(ctx context.Context, id string) (slipway.Release, error) {
	var v slipway.Release
	return v, c.get(ctx, "/api/v1/releases/"+url.PathEscape(id), &v)
}

// CreateRelease starts a release (POST /api/v1/releases).
func (c *Client) CreateRelease(ctx context.Context, nr slipway.NewRelease) (slipway.Release, error) {
	var v slipway.Release
	return v, c.do(ctx, http.MethodPost, "/api/v1/releases", nr, &v)
}

// Approve approves the release into the stage it waits at (POST .../approve); the server
// takes the actor and role from the token, whatever the arguments say.
func (c *Client) Approve(ctx context.Context, id, _ string, _ slipway.Role, reason string) (slipway.Release, error) {
	var v slipway.Release
	return v, c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/approve", ReleaseRequest{Reason: reason}, &v)
}

// Override lets the release through its stage's freeze and windows (POST .../override,
// admin); the server takes the actor from the token.
func (c *Client) Override(ctx context.Context, id, _, reason string) (slipway.Release, error) {
	var v slipway.Release
	return v, c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/override", ReleaseRequest{Reason: reason}, &v)
}

var _ slipway.ReleaseOperator = (*Client)(nil)
