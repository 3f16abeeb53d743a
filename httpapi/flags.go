package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"slipway.dev/slipway"
)

// DefaultStaleFor is how long a flag must go unevaluated, or serve one variant, before
// GET /api/v1/flags/stale lists it, when the query does not say.
const DefaultStaleFor = 7 * 24 * time.Hour

// FlagEvaluateRequest is the body of POST /api/v1/flags/{key}/evaluate.
type FlagEvaluateRequest struct {
	Context map[string]any `json:"context,omitempty"`
}

// FlagChangeRequest is the optional body of POST /api/v1/flags/{key}/enable, /disable and
// /default (which needs Variant).
type FlagChangeRequest struct {
	Variant string `json:"variant,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// FlagRollbackRequest is the body of POST /api/v1/flagsets/{set}/rollback.
type FlagRollbackRequest struct {
	Version int64  `json:"version"`
	Reason  string `json:"reason,omitempty"`
}

// flagRoutes adds the flag management routes when the config has flags.
func (s *Server) flagRoutes() {
	if s.cfg.Flags == nil || s.cfg.FlagOperator == nil {
		return
	}
	m := s.mux
	read := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, s.allow(slipway.PermRead, h)) }
	read("GET /api/v1/flags", s.flags)
	read("GET /api/v1/flags/stale", s.staleFlags)
	read("GET /api/v1/flags/{key}", s.flag)
	read("GET /api/v1/flags/{key}/history", s.flagHistory)
	read("POST /api/v1/flags/{key}/evaluate", s.evaluateFlag)
	for _, k := range []slipway.FlagChangeKind{slipway.FlagEnable, slipway.FlagDisable, slipway.FlagSetDefault} {
		m.HandleFunc("POST /api/v1/flags/{key}/"+string(k), s.allow(slipway.PermDeployShared, s.changeFlag(k)))
	}
	m.HandleFunc("POST /api/v1/flagsets/{set}/rollback", s.allow(slipway.PermDeployShared, s.rollbackFlagSet))
}

func (s *Server) flags(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Flags.Flags(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) flag(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Flags.Flag(r.Context(), r.PathValue("key"))
	s.reply(w, r, v, err)
}

func (s *Server) flagHistory(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Flags.FlagHistory(r.Context(), r.PathValue("key"))
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) staleFlags(w http.ResponseWriter, r *http.Request) {
	q := slipway.StaleQuery{UnevaluatedFor: DefaultStaleFor, SingleVariantFor: DefaultStaleFor}
	for name, dst := range map[string]*time.Duration{"unevaluatedFor": &q.UnevaluatedFor, "singleVariantFor": &q.SingleVariantFor} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			s.fail(w, r, slipway.Errorf(slipway.EINVALID, "query parameter %s=%q must be a duration like 168h (0 turns the test off)", name, v))
			return
		}
		*dst = d
	}
	v, err := s.cfg.Flags.StaleFlags(r.Context(), q)
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) evaluateFlag(w http.ResponseWriter, r *http.Request) {
	var req FlagEvaluateRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Flags.EvaluateFlag(r.Context(), r.PathValue("key"), req.Context)
	s.reply(w, r, v, err)
}

func (s *Server) changeFlag(kind slipway.FlagChangeKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req FlagChangeRequest
		if !s.decodeRequest(w, r, &req, &req.Reason, kind != slipway.FlagSetDefault) {
			return
		}
		if kind == slipway.FlagSetDefault && req.Variant == "" {
			s.fail(w, r, slipway.Errorf(slipway.EINVALID, "request body needs a variant: the new default variant"))
			return
		}
		v, err := s.cfg.FlagOperator.ChangeFlag(r.Context(), slipway.FlagChange{
			Kind: kind, Key: r.PathValue("key"), Variant: req.Variant, Actor: actor(r), Reason: req.Reason,
		})
		s.reply(w, r, v, err)
	}
}

func (s *Server) rollbackFlagSet(w http.ResponseWriter, r *http.Request) {
	var req FlagRollbackRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Version <= 0 {
		s.fail(w, r, slipway.Errorf(slipway.EINVALID, "request body needs a version of 1 or more"))
		return
	}
	if err := checkReason(req.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.FlagOperator.RollbackFlagSet(r.Context(), slipway.FlagRollback{
		Set: r.PathValue("set"), Version: req.Version, Actor: actor(r), Reason: req.Reason,
	})
	s.reply(w, r, v, err)
}

var (
	_ slipway.FlagReader   = (*Client)(nil)
	_ slipway.FlagOperator = (*Client)(nil)
)

func flagPath(key string) string { return "/api/v1/flags/" + url.PathEscape(key) }

// Flags returns every flag, by key.
func (c *Client) Flags(ctx context.Context) ([]slipway.FlagInfo, error) {
	var v []slipway.FlagInfo
	return v, c.get(ctx, "/api/v1/flags", &v)
}

// Flag returns one flag with its definition; ENOTFOUND for an unknown key.
func (c *Client) Flag(ctx context.Context, key string) (slipway.FlagInfo, error) {
	var v slipway.FlagInfo
	return v, c.get(ctx, flagPath(key), &v)
}

// FlagHistory returns the versions of the set declaring key, newest first.
func (c *Client) FlagHistory(ctx context.Context, key string) ([]slipway.FlagVersion, error) {
	var v []slipway.FlagVersion
	return v, c.get(ctx, flagPath(key)+"/history", &v)
}

// StaleFlags returns the flags q finds stale (a zero duration turns its test off).
func (c *Client) StaleFlags(ctx context.Context, q slipway.StaleQuery) ([]slipway.FlagInfo, error) {
	p := url.Values{}
	p.Set("unevaluatedFor", q.UnevaluatedFor.String())
	p.Set("singleVariantFor", q.SingleVariantFor.String())
	var v []slipway.FlagInfo
	return v, c.get(ctx, "/api/v1/flags/stale?"+p.Encode(), &v)
}

// EvaluateFlag evaluates key for evalCtx on the server.
func (c *Client) EvaluateFlag(ctx context.Context, key string, evalCtx map[string]any) (slipway.Evaluation, error) {
	var v slipway.Evaluation
	return v, c.do(ctx, http.MethodPost, flagPath(key)+"/evaluate", FlagEvaluateRequest{Context: evalCtx}, &v)
}

// ChangeFlag enables or disables a flag or sets its default variant.
func (c *Client) ChangeFlag(ctx context.Context, ch slipway.FlagChange) (slipway.FlagInfo, error) {
	var v slipway.FlagInfo
	body := FlagChangeRequest{Variant: ch.Variant, Reason: ch.Reason}
	return v, c.do(ctx, http.MethodPost, flagPath(ch.Key)+"/"+url.PathEscape(string(ch.Kind)), body, &v)
}

// RollbackFlagSet makes an earlier version of a set its newest.
func (c *Client) RollbackFlagSet(ctx context.Context, r slipway.FlagRollback) (slipway.FlagVersion, error) {
	var v slipway.FlagVersion
	body := FlagRollbackRequest{Version: r.Version, Reason: r.Reason}
	return v, c.do(ctx, http.MethodPost, "/api/v1/flagsets/"+url.PathEscape(r.Set)+"/rollback", body, &v)
}
