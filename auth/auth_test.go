package auth_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

type world struct {
	svc   *auth.Service
	store *sqlite.Store
	clock *slipwaytest.Clock
	path  string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := slipwaytest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "slipway.db")
	st, err := sqlite.Open(path, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &world{svc: auth.New(auth.Config{Store: st, Now: clock.Now}), store: st, clock: clock, path: path}
}

func TestService_CreateAuthenticateRevoke(t *testing.T) {
	w := newWorld(t)
	ctx := slipway.WithPeer(context.Background(), "127.0.0.1:5555")
	c, err := w.svc.CreateToken(ctx, slipway.NewToken{Name: "ci", Role: slipway.RoleDeployer, Scope: slipway.Scope{Apps: []string{"web-*"}}}, "local-admin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Secret, auth.SecretPrefix) || len(c.Secret) < 40 {
		t.Fatalf("secret %q is not a fresh slw_ secret", c.Secret)
	}
	got, err := w.svc.Authenticate(ctx, c.Secret)
	if err != nil || got.Name != "ci" || got.Role != slipway.RoleDeployer || got.CreatedBy != "local-admin" || !got.Scope.AllowsApp("web-1") || got.Scope.AllowsApp("api") {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "slw_", c.Secret + "x", strings.TrimPrefix(c.Secret, "slw_"), strings.ToUpper(c.Secret), strings.Repeat("slw_", 1000)} {
		if _, err := w.svc.Authenticate(ctx, bad); slipway.ErrorCode(err) != slipway.EUNAUTHORIZED {
			t.Errorf("Authenticate(%.20q) = %v, want EUNAUTHORIZED", bad, err)
		}
	}
	if _, err := w.svc.CreateToken(ctx, slipway.NewToken{Name: "ci", Role: slipway.RoleViewer}, "x"); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Errorf("a second token named ci: %v, want ECONFLICT", err)
	}
	if _, err := w.svc.RevokeToken(ctx, "ci", "local-admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Authenticate(ctx, c.Secret); slipway.ErrorCode(err) != slipway.EUNAUTHORIZED {
		t.Errorf("a revoked token authenticates: %v", err)
	}
	if _, err := w.svc.RevokeToken(ctx, "nope", "local-admin", ""); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("revoke of an unknown token: %v, want ENOTFOUND", err)
	}
	if _, err := w.svc.CreateToken(ctx, slipway.NewToken{Name: "ci", Role: slipway.RoleViewer}, "x"); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Errorf("a revoked token's name was reused: %v; an event's actor must name one token", err)
	}

	// Every change is an event with the actor and the peer; the secret is nowhere.
	evs, err := w.store.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != slipway.EventTokenCreated || evs[1].Kind != slipway.EventTokenRevoked ||
		evs[1].Actor != "local-admin" || evs[1].Reason != "leaked" || evs[0].Peer != "127.0.0.1:5555" {
		t.Errorf("events %+v", evs)
	}
	if err := w.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{w.path, w.path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(strings.TrimPrefix(c.Secret, auth.SecretPrefix))) {
			t.Errorf("%s holds the secret in clear", f)
		}
	}
}

func TestService_Expiry(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c, err := w.svc.CreateToken(ctx, slipway.NewToken{Name: "temp", Role: slipway.RoleViewer, ExpiresIn: slipway.Duration(time.Hour)}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Authenticate(ctx, c.Secret); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	w.clock.Advance(time.Hour)
	if _, err := w.svc.Authenticate(ctx, c.Secret); slipway.ErrorCode(err) != slipway.EUNAUTHORIZED {
		t.Fatalf("at expiry: %v, want EUNAUTHORIZED", err)
	}
}

func TestService_RejectsBadRequests(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, n := range []slipway.NewToken{
		{Name: "", Role: slipway.RoleViewer},
		{Name: "engine", Role: slipway.RoleAdmin},
		{Name: "Engine", Role: slipway.RoleAdmin},
		{Name: "ANALYSIS", Role: slipway.RoleViewer},
		{Name: "a b", Role: slipway.RoleViewer},
		{Name: "ok\u001b[2J", Role: slipway.RoleViewer},
		{Name: strings.Repeat("a", 64), Role: slipway.RoleViewer},
		{Name: "x", Role: "root"},
		{Name: "x", Role: slipway.RoleViewer, Scope: slipway.Scope{Apps: []string{"web"}}},
		{Name: "x", Role: slipway.RoleAdmin, Scope: slipway.Scope{Apps: []string{"web"}}},
		{Name: "x", Role: slipway.RoleDeployer, Scope: slipway.Scope{Apps: []string{"[web"}}},
		{Name: "x", Role: slipway.RoleDeployer, Scope: slipway.Scope{Apps: []string{""}}},
		{Name: "x", Role: slipway.RoleViewer, ExpiresIn: -1},
	} {
		if _, err := w.svc.CreateToken(ctx, n, "a"); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("CreateToken(%+v) = %v, want EINVALID", n, err)
		}
	}
	ts, err := w.svc.Tokens(ctx)
	if err != nil || len(ts) != 0 {
		t.Errorf("tokens after bad requests: %+v, %v", ts, err)
	}
}

func TestToken_Allow(t *testing.T) {
	viewer := slipway.Token{Name: "v", Role: slipway.RoleViewer}
	deployer := slipway.Token{Name: "d", Role: slipway.RoleDeployer}
	scoped := slipway.Token{Name: "s", Role: slipway.RoleDeployer, Scope: slipway.Scope{Apps: []string{"web-*", "checkout"}}}
	admin := slipway.Token{Name: "a", Role: slipway.RoleAdmin}
	unknown := slipway.Token{Name: "u", Role: "root"}
	tests := []struct {
		tok  slipway.Token
		perm slipway.Permission
		app  string
		ok   bool
	}{
		{viewer, slipway.PermRead, "", true},
		{viewer, slipway.PermDeploy, "web-1", false},
		{viewer, slipway.PermAdmin, "", false},
		{deployer, slipway.PermDeploy, "anything", true},
		{deployer, slipway.PermDeployShared, "", true},
		{deployer, slipway.PermAdmin, "", false},
		{scoped, slipway.PermDeploy, "web-1", true},
		{scoped, slipway.PermDeploy, "checkout", true},
		{scoped, slipway.PermDeploy, "checkout-2", false},
		{scoped, slipway.PermDeploy, "api", false},
		{scoped, slipway.PermDeployShared, "", false},
		{admin, slipway.PermAdmin, "", true},
		{admin, slipway.PermDeploy, "x", true},
		{unknown, slipway.PermRead, "", false},
		{admin, "other", "", false},
	}
	for _, tc := range tests {
		err := tc.tok.Allow(tc.perm, tc.app)
		if (err == nil) != tc.ok {
			t.Errorf("%s %s %s: %v, want ok %v", tc.tok.Name, tc.perm, tc.app, err, tc.ok)
		}
		if err != nil && slipway.ErrorCode(err) != slipway.EFORBIDDEN {
			t.Errorf("%s %s %s: code %s, want forbidden", tc.tok.Name, tc.perm, tc.app, slipway.ErrorCode(err))
		}
	}
}

// TestService_ImportToken: a secret chosen outside slipway (an operator's file) becomes a
// token that authenticates; a secret too short, without the prefix or with other
// characters is refused, and so is a second token with the same secret. TokenBySecret
// finds the token revoked too, which Authenticate does not.
func TestService_ImportToken(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	secret := "slw_" + strings.Repeat("0123456789abcdef", 4)
	imported, err := w.svc.ImportToken(ctx, slipway.NewToken{Name: "file-admin", Role: slipway.RoleAdmin}, secret, slipway.ActorEngine)
	if err != nil {
		t.Fatal(err)
	}
	if imported.Name != "file-admin" || imported.Role != slipway.RoleAdmin || imported.CreatedBy != slipway.ActorEngine {
		t.Errorf("ImportToken = %+v", imported)
	}
	if got, err := w.svc.Authenticate(ctx, secret); err != nil || got.Name != "file-admin" {
		t.Fatalf("Authenticate(the imported secret) = %+v, %v", got, err)
	}
	if _, err := w.svc.ImportToken(ctx, slipway.NewToken{Name: "other", Role: slipway.RoleViewer}, secret, slipway.ActorEngine); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Errorf("a second token with the same secret: %v, want ECONFLICT", err)
	}
	for _, bad := range []string{
		"",
		"slw_" + strings.Repeat("a", 31),         // too short
		strings.Repeat("a", 40),                  // no prefix
		"slw_" + strings.Repeat("a", 31) + "+",   // not base64url
		"slw_" + strings.Repeat("a", 31) + " ",   // white space
		"slw_" + strings.Repeat("a", 253),        // too long
		"SLW_" + strings.Repeat("0123456789", 4), // the prefix is lowercase
	} {
		if _, err := w.svc.ImportToken(ctx, slipway.NewToken{Name: "bad", Role: slipway.RoleViewer}, bad, slipway.ActorEngine); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("ImportToken(%.24q) = %v, want EINVALID", bad, err)
		}
	}
	if err := auth.CheckChosenSecret("slw_" + strings.Repeat("A-_z", 63)); err != nil {
		t.Errorf("the longest secret: %v", err)
	}
	if _, err := w.svc.RevokeToken(ctx, "file-admin", slipway.ActorEngine, "rotated"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Authenticate(ctx, secret); slipway.ErrorCode(err) != slipway.EUNAUTHORIZED {
		t.Errorf("a revoked imported token authenticates: %v", err)
	}
	got, err := w.svc.TokenBySecret(ctx, secret)
	if err != nil || got.Name != "file-admin" || got.RevokedAt == nil {
		t.Errorf("TokenBySecret(a revoked token's secret) = %+v, %v", got, err)
	}
	if _, err := w.svc.TokenBySecret(ctx, "slw_unknown"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("TokenBySecret(unknown) = %v, want ENOTFOUND", err)
	}
}
