// Package auth issues and checks slipway's API tokens. A token's secret is 32 random bytes,
// shown once; the store keeps only its SHA-256 hash, so a copy of the store gives no usable
// credential. Role and scope rules live on slipway.Token (Allow); this package creates,
// lists, revokes and authenticates.
//
// Start reading at Service.Authenticate, then Service.CreateToken.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// SecretPrefix starts every token secret, so that a secret pasted in the wrong place (a log,
// a repository) is easy to recognise and to scan for.
const SecretPrefix = "slw_"

// secretBytes is the entropy of a secret.
const secretBytes = 32

// maxSecretLen bounds what Authenticate hashes; a real secret is much shorter.
const maxSecretLen = 256

// Config is what a Service needs.
type Config struct {
	Store slipway.TokenStore
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service manages tokens. It is safe for concurrent use.
type Service struct {
	store slipway.TokenStore
	now   func() time.Time
}

var _ slipway.TokenManager = (*Service)(nil)

// New returns a Service over cfg.Store.
func New(cfg Config) *Service {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{store: cfg.Store, now: now}
}

// Hash returns the stored form of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret returns a fresh random secret.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token secret: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// unauthorized is the one answer to every bad secret: it does not say which check failed.
func unauthorized() error {
	return slipway.Errorf(slipway.EUNAUTHORIZED, "the API token is not valid (unknown, revoked or expired); give one with --token or SLIPWAY_TOKEN")
}

// Authenticate returns the active token whose secret this is; EUNAUTHORIZED for an unknown,
// revoked or expired one. The lookup is by hash, so the time it takes says nothing about
// how close a guess was.
func (s *Service) Authenticate(ctx context.Context, secret string) (slipway.Token, error) {
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) > maxSecretLen {
		return slipway.Token{}, unauthorized()
	}
	t, err := s.store.TokenByHash(ctx, Hash(secret))
	if slipway.ErrorCode(err) == slipway.ENOTFOUND {
		return slipway.Token{}, unauthorized()
	}
	if err != nil {
		return slipway.Token{}, fmt.Errorf("authenticate: %w", err)
	}
	if !t.Active(s.now()) {
		return slipway.Token{}, unauthorized()
	}
	return t, nil
}

// CreateToken creates a token by actor and returns it with its secret; EINVALID for a bad
// request, ECONFLICT when a token of that name exists (revoked ones keep their names, so
// that an event's actor always names one token).
func (s *Service) CreateToken(ctx context.Context, n slipway.NewToken, actor string) (slipway.CreatedToken, error) {
	if err := n.Validate(); err != nil {
		return slipway.CreatedToken{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return slipway.CreatedToken{}, err
	}
	now := s.now().UTC()
	t := slipway.Token{Name: n.Name, Role: n.Role, Scope: n.Scope, CreatedAt: now, CreatedBy: actor}
	if n.ExpiresIn > 0 {
		exp := now.Add(n.ExpiresIn.D())
		t.ExpiresAt = &exp
	}
	msg := fmt.Sprintf("token %s created with role %s", t.Name, t.Role)
	if !t.Scope.Unlimited() {
		msg += fmt.Sprintf(", apps %s", strings.Join(t.Scope.Apps, ", "))
	}
	if t.ExpiresAt != nil {
		msg += ", expires " + t.ExpiresAt.Format(time.RFC3339)
	}
	ev := slipway.Event{Time: now, Kind: slipway.EventTokenCreated, Actor: actor, Message: msg}
	if err := s.store.InsertToken(ctx, t, Hash(secret), ev); err != nil {
		return slipway.CreatedToken{}, err
	}
	return slipway.CreatedToken{Token: t, Secret: secret}, nil
}

// Tokens lists every token, revoked ones included, by name.
func (s *Service) Tokens(ctx context.Context) ([]slipway.Token, error) {
	return s.store.Tokens(ctx)
}

// RevokeToken revokes the named token by actor; ENOTFOUND when there is none. It takes
// effect at the token's next request.
func (s *Service) RevokeToken(ctx context.Context, name, actor, reason string) (slipway.Token, error) {
	if len(reason) > slipway.MaxReasonLen {
		return slipway.Token{}, slipway.Errorf(slipway.EINVALID, "reason is longer than %d bytes", slipway.MaxReasonLen)
	}
	now := s.now().UTC()
	ev := slipway.Event{Time: now, Kind: slipway.EventTokenRevoked, Actor: actor, Message: "token " + name + " revoked", Reason: reason}
	return s.store.RevokeToken(ctx, name, now, ev)
}
