package slipway

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Role is what a token may do. Roles are ordered: each one may do what the one before it may.
type Role string

// Roles.
const (
	// RoleViewer reads: apps, status, rollouts, events, flags; it may also plan.
	RoleViewer Role = "viewer"
	// RoleDeployer also applies files and operates rollouts, flags and ramps, within its scope.
	RoleDeployer Role = "deployer"
	// RoleAdmin also manages tokens.
	RoleAdmin Role = "admin"
)

// Roles lists the roles, least privileged first.
func Roles() []Role { return []Role{RoleViewer, RoleDeployer, RoleAdmin} }

// rank orders roles; 0 for an unknown role, which may do nothing.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleDeployer:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Scope limits which apps a deployer token may change. A nil list means every one. Scopes are
// shell-style globs (path.Match: `web-*`, `checkout`). Environments will be a second
// dimension beside Apps.
type Scope struct {
	Apps []string `json:"apps,omitempty"`
}

// Unlimited reports whether s limits nothing.
func (s Scope) Unlimited() bool { return len(s.Apps) == 0 }

// AllowsApp reports whether s covers the app name.
func (s Scope) AllowsApp(name string) bool {
	if len(s.Apps) == 0 {
		return true
	}
	for _, g := range s.Apps {
		if ok, err := path.Match(g, name); err == nil && ok {
			return true
		}
	}
	return false
}

// Validate returns EINVALID when a glob is malformed or too long.
func (s Scope) Validate() error {
	if len(s.Apps) > MaxScopeGlobs {
		return Errorf(EINVALID, "scope: at most %d app globs, got %d", MaxScopeGlobs, len(s.Apps))
	}
	for _, g := range s.Apps {
		if g == "" || len(g) > MaxNameLen {
			return Errorf(EINVALID, "scope: app glob %q must be 1 to %d characters", g, MaxNameLen)
		}
		if _, err := path.Match(g, ""); err != nil {
			return Errorf(EINVALID, "scope: app glob %q is malformed (use *, ? and [a-z] as in a shell)", g)
		}
	}
	return nil
}

// Limits of tokens.
const (
	// MaxNameLen caps a token's name and a scope glob.
	MaxNameLen = 63
	// MaxScopeGlobs caps the globs of one scope.
	MaxScopeGlobs = 32
	// MaxReasonLen caps the free-text reason a client gives for a change.
	MaxReasonLen = 1024
)

// tokenName is what a token's name may be: it becomes the actor of events.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)

// ValidTokenName returns EINVALID when name cannot name a token: empty, too long, characters
// other than letters, digits and . _ @ -, or one of the actors slipway itself writes.
func ValidTokenName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen || !tokenName.MatchString(name) {
		return Errorf(EINVALID, "token name %q must be 1 to %d letters, digits or . _ @ -, starting with a letter or digit", name, MaxNameLen)
	}
	switch strings.ToLower(name) {
	case ActorEngine, ActorAnalysis, ActorDrift:
		return Errorf(EINVALID, "token name %q is reserved for slipway's own events (in any case)", name)
	}
	return nil
}

// Token is an API credential: a name (the actor of every event it causes), a role and a
// scope. Its secret is shown once, when it is created; the store keeps only its hash.
type Token struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Scope     Scope      `json:"scope,omitzero"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// Active reports whether t may be used at now: not revoked and not expired.
func (t Token) Active(now time.Time) bool {
	if t.RevokedAt != nil {
		return false
	}
	return t.ExpiresAt == nil || now.Before(*t.ExpiresAt)
}

// Permission is what a request needs.
type Permission string

// Permissions, from least to most privileged.
const (
	// PermRead reads anything, and plans.
	PermRead Permission = "read"
	// PermDeploy changes an app (named by the request), within the token's scope.
	PermDeploy Permission = "deploy"
	// PermDeployShared changes what belongs to no one app: analysis templates, flags, flag
	// sets and ramps. It needs a deployer whose scope is unlimited.
	PermDeployShared Permission = "deployShared"
	// PermAdmin manages tokens.
	PermAdmin Permission = "admin"
)

// Allow returns nil when t may do p to app ("" for requests about no one app), else
// EFORBIDDEN saying what would be needed.
func (t Token) Allow(p Permission, app string) error {
	switch p {
	case PermRead:
		if t.Role.rank() >= RoleViewer.rank() {
			return nil
		}
	case PermDeploy:
		if t.Role.rank() < RoleDeployer.rank() {
			break
		}
		if t.Role == RoleAdmin || t.Scope.AllowsApp(app) {
			return nil
		}
		return Errorf(EFORBIDDEN, "token %s may not change app %q: its scope is apps %v", t.Name, app, t.Scope.Apps)
	case PermDeployShared:
		if t.Role.rank() < RoleDeployer.rank() {
			break
		}
		if t.Role == RoleAdmin || t.Scope.Unlimited() {
			return nil
		}
		return Errorf(EFORBIDDEN, "token %s is limited to apps %v; analysis templates, flags and ramps need a deployer token without an app scope", t.Name, t.Scope.Apps)
	case PermAdmin:
		if t.Role == RoleAdmin {
			return nil
		}
	}
	need := map[Permission]Role{PermRead: RoleViewer, PermDeploy: RoleDeployer, PermDeployShared: RoleDeployer, PermAdmin: RoleAdmin}[p]
	if need == "" {
		return Errorf(EFORBIDDEN, "unknown permission %q", p)
	}
	return Errorf(EFORBIDDEN, "token %s has role %s; this needs role %s", t.Name, t.Role, need)
}

// NewToken asks for a token to be created.
type NewToken struct {
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	Scope Scope  `json:"scope,omitzero"`
	// ExpiresIn, when set, makes the token expire that long after it is created.
	ExpiresIn Duration `json:"expiresIn,omitempty"`
}

// Validate returns EINVALID naming every problem of n.
func (n NewToken) Validate() error {
	var details []string
	if err := ValidTokenName(n.Name); err != nil {
		details = append(details, ErrorMessage(err))
	}
	if !n.Role.Valid() {
		details = append(details, fmt.Sprintf("role %q is not a role; use viewer, deployer or admin", n.Role))
	}
	if err := n.Scope.Validate(); err != nil {
		details = append(details, ErrorMessage(err))
	}
	if !n.Scope.Unlimited() && n.Role != RoleDeployer {
		details = append(details, fmt.Sprintf("an app scope limits what a deployer may change; a %s token takes none", n.Role))
	}
	if n.ExpiresIn < 0 {
		details = append(details, "expiresIn must not be negative")
	}
	if len(details) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "the token cannot be created", Details: details}
}

// CreatedToken is a new token with its secret, which is shown only this once.
type CreatedToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// TokenManager creates, lists and revokes tokens, and authenticates their secrets.
// Implementation: auth.Service.
type TokenManager interface {
	// Authenticate returns the active token whose secret this is; EUNAUTHORIZED otherwise
	// (unknown, revoked or expired), without saying which.
	Authenticate(ctx context.Context, secret string) (Token, error)
	// CreateToken creates a token by actor; EINVALID for a bad request, ECONFLICT when a
	// token of that name exists.
	CreateToken(ctx context.Context, n NewToken, actor string) (CreatedToken, error)
	// Tokens lists every token, revoked ones included, by name.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the named token; ENOTFOUND when there is none.
	RevokeToken(ctx context.Context, name, actor, reason string) (Token, error)
}

// TokenStore keeps tokens by the hash of their secrets. Implementation: sqlite.Store.
type TokenStore interface {
	// InsertToken stores t with its secret's hash and ev in one transaction; ECONFLICT when
	// a token of that name exists.
	InsertToken(ctx context.Context, t Token, hash []byte, ev Event) error
	// TokenByHash returns the token with that hash, revoked or not; ENOTFOUND when none.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	// Tokens lists every token by name.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks the named token revoked at `at` and stores ev in one transaction,
	// returning the token; ENOTFOUND when there is none. Revoking a revoked token keeps its
	// first revocation time.
	RevokeToken(ctx context.Context, name string, at time.Time, ev Event) (Token, error)
}

// peerKey is the context key of the network address a request came from.
type peerKey struct{}

// WithPeer returns ctx carrying the address of the client that asked; the store records it
// on the events committed under ctx.
func WithPeer(ctx context.Context, peer string) context.Context {
	return context.WithValue(ctx, peerKey{}, peer)
}

// PeerFrom returns the client address WithPeer put in ctx, or "".
func PeerFrom(ctx context.Context) string {
	p, _ := ctx.Value(peerKey{}).(string)
	return p
}

// AtLeast reports whether r is a valid role that may do what role o may.
func (r Role) AtLeast(o Role) bool { return r.Valid() && r.rank() >= o.rank() }
