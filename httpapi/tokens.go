package httpapi

import (
	"context"
	"net/http"
	"net/url"

	"slipway.dev/slipway"
)

// RevokeTokenRequest is the optional body of POST /api/v1/tokens/{name}/revoke.
type RevokeTokenRequest struct {
	Reason string `json:"reason,omitempty"`
}

// tokenRoutes adds the token routes: every one needs an admin token.
func (s *Server) tokenRoutes() {
	m := s.mux
	m.HandleFunc("GET /api/v1/tokens", s.allow(slipway.PermAdmin, s.tokens))
	m.HandleFunc("POST /api/v1/tokens", s.allow(slipway.PermAdmin, s.createToken))
	m.HandleFunc("POST /api/v1/tokens/{name}/revoke", s.allow(slipway.PermAdmin, s.revokeToken))
}

func (s *Server) tokens(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Tokens.Tokens(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req slipway.NewToken
	if err := decodeBody(w, r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Tokens.CreateToken(r.Context(), req, actor(r))
	s.reply(w, r, v, err)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	var req RevokeTokenRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Tokens.RevokeToken(r.Context(), r.PathValue("name"), actor(r), req.Reason)
	s.reply(w, r, v, err)
}

// WhoAmI returns the token the client authenticates with (GET /api/v1/whoami).
func (c *Client) WhoAmI(ctx context.Context) (slipway.Token, error) {
	var v slipway.Token
	return v, c.get(ctx, "/api/v1/whoami", &v)
}

// Tokens lists every token (GET /api/v1/tokens; admin).
func (c *Client) Tokens(ctx context.Context) ([]slipway.Token, error) {
	var v []slipway.Token
	return v, c.get(ctx, "/api/v1/tokens", &v)
}

// CreateToken creates a token and returns it with its secret, shown only this once
// (POST /api/v1/tokens; admin).
func (c *Client) CreateToken(ctx context.Context, n slipway.NewToken) (slipway.CreatedToken, error) {
	var v slipway.CreatedToken
	return v, c.do(ctx, http.MethodPost, "/api/v1/tokens", n, &v)
}

// RevokeToken revokes the named token (POST /api/v1/tokens/{name}/revoke; admin).
func (c *Client) RevokeToken(ctx context.Context, name, reason string) (slipway.Token, error) {
	var v slipway.Token
	return v, c.do(ctx, http.MethodPost, "/api/v1/tokens/"+url.PathEscape(name)+"/revoke", RevokeTokenRequest{Reason: reason}, &v)
}
