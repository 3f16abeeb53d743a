package apitest

import (
	"context"
	"net/http"
	"sync"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
)

// Secrets of the tokens every Tokens starts with: one per role, and a deployer scoped to
// apps matching "web*". They open only test servers.
//
//nolint:gosec // test credentials, by design
const (
	AdminSecret    = "slw_test-admin"
	DeployerSecret = "slw_test-deployer"
	ScopedSecret   = "slw_test-scoped-deployer"
	ViewerSecret   = "slw_test-viewer"
)

// Tokens is an in-memory slipway.TokenManager for tests of the API's plumbing; the real one
// (auth.Service over the SQLite store) is tested on its own and end to end. It is safe for
// concurrent use.
type Tokens struct {
	mu     sync.Mutex
	byName map[string]slipway.Token
	secret map[string]string // secret -> name
}

var _ slipway.TokenManager = (*Tokens)(nil)

// NewTokens returns Tokens holding admin, deployer, scoped-deployer and viewer.
func NewTokens() *Tokens {
	t := &Tokens{byName: map[string]slipway.Token{}, secret: map[string]string{}}
	for secret, tok := range map[string]slipway.Token{
		AdminSecret:    {Name: "admin", Role: slipway.RoleAdmin},
		DeployerSecret: {Name: "deployer", Role: slipway.RoleDeployer},
		ScopedSecret:   {Name: "scoped-deployer", Role: slipway.RoleDeployer, Scope: slipway.Scope{Apps: []string{"web*"}}},
		ViewerSecret:   {Name: "viewer", Role: slipway.RoleViewer},
	} {
		t.byName[tok.Name] = tok
		t.secret[secret] = tok.Name
	}
	return t
}

// Authenticate returns the active token of secret; EUNAUTHORIZED otherwise.
func (t *Tokens) Authenticate(_ context.Context, secret string) (slipway.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok, ok := t.byName[t.secret[secret]]
	if !ok || !tok.Active(time.Now()) {
		return slipway.Token{}, slipway.Errorf(slipway.EUNAUTHORIZED, "the API token is not valid")
	}
	return tok, nil
}

// CreateToken adds a token whose secret is "slw_" and its name.
func (t *Tokens) CreateToken(_ context.Context, n slipway.NewToken, actor string) (slipway.CreatedToken, error) {
	if err := n.Validate(); err != nil {
		return slipway.CreatedToken{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byName[n.Name]; ok {
		return slipway.CreatedToken{}, slipway.Errorf(slipway.ECONFLICT, "a token named %q exists", n.Name)
	}
	tok := slipway.Token{Name: n.Name, Role: n.Role, Scope: n.Scope, CreatedBy: actor}
	secret := "slw_" + n.Name
	t.byName[n.Name], t.secret[secret] = tok, n.Name
	return slipway.CreatedToken{Token: tok, Secret: secret}, nil
}

// Tokens lists the tokens.
func (t *Tokens) Tokens(context.Context) ([]slipway.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []slipway.Token
	for _, tok := range t.byName {
		out = append(out, tok)
	}
	return out, nil
}

// RevokeToken revokes the named token.
func (t *Tokens) RevokeToken(_ context.Context, name, _, _ string) (slipway.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok, ok := t.byName[name]
	if !ok {
		return slipway.Token{}, slipway.Errorf(slipway.ENOTFOUND, "token %q not found", name)
	}
	now := time.Now()
	tok.RevokedAt = &now
	t.byName[name] = tok
	return tok, nil
}

// Forget removes the named token, as if it had never been created.
func (t *Tokens) Forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byName, name)
}

// bearer adds an Authorization header to requests that carry none.
type bearer struct {
	secret string
	base   http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["Authorization"]; ok {
		return b.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.secret)
	return b.base.RoundTrip(r)
}

// NewClient returns an API client for the server at url that authenticates with AdminSecret.
func NewClient(url string) *httpapi.Client {
	c := httpapi.NewClient(url, nil)
	c.SetToken(AdminSecret)
	return c
}

// Authenticated returns base sending AdminSecret on every request that has no
// Authorization header of its own.
func Authenticated(base http.RoundTripper) http.RoundTripper {
	return bearer{secret: AdminSecret, base: base}
}

// CloseIdleConnections closes the idle connections of the transport underneath.
func (b bearer) CloseIdleConnections() {
	if c, ok := b.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
