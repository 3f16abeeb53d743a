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

// minChosenSecret is the fewest characters after SecretPrefix of a secret chosen outside
// slipway (ImportToken): 32 hexadecimal digits are 128 bits.
const minChosenSecret = 32

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
	t, err := s.insert(ctx, n, secret, actor)
	if err != nil {
		return slipway.CreatedToken{}, err
	}
	return slipway.CreatedToken{Token: t, Secret: secret}, nil
}

// CheckChosenSecret returns EINVALID unless secret can be a token's secret chosen outside
// slipway: SecretPrefix, then 32 to 252 letters, digits, '-' or '_' (slw_ and 64 hexadecimal
// digits from openssl rand -hex 32, for example).
func CheckChosenSecret(secret string) error {
	body, ok := strings.CutPrefix(secret, SecretPrefix)
	valid := ok && len(body) >= minChosenSecret && len(secret) <= maxSecretLen
	for _, r := range body {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (r < '0' || r > '9') && r != '-' && r != '_' {
			valid = false
		}
	}
	if !valid {
		return slipway.Errorf(slipway.EINVALID, "a token secret is %s and %d to %d letters, digits, - or _ (for example: echo %s$(openssl rand -hex 32))",
			SecretPrefix, minChosenSecret, maxSecretLen-len(SecretPrefix), SecretPrefix)
	}
	return nil
}

// ImportToken creates a token by actor whose secret was chosen outside slipway (an
// operator's file, such as a Kubernetes Secret, that the server is told to accept);
// EINVALID for a bad request or a secret CheckChosenSecret refuses, ECONFLICT when a token
// of that name or with that secret exists.
func (s *Service) ImportToken(ctx context.Context, n slipway.NewToken, secret, actor string) (slipway.Token, error) {
	if err := n.Validate(); err != nil {
		return slipway.Token{}, err
	}
	if err := CheckChosenSecret(secret); err != nil {
		return slipway.Token{}, err
	}
	return s.insert(ctx, n, secret, actor)
}

// TokenBySecret returns the token whose secret this is, revoked and expired ones included
// (Authenticate is the check of a request); ENOTFOUND when there is none.
func (s *Service) TokenBySecret(ctx context.Context, secret string) (slipway.Token, error) {
	return s.store.TokenByHash(ctx, Hash(secret))
}

// insert stores the token n with secret, created by actor, and its event.
func (s *Service) insert(ctx context.Context, n slipway.NewToken, secret, actor string) (slipway.Token, error) {
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
		return slipway.Token{}, err
	}
	return t, nil
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
