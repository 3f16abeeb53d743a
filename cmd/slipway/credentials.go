package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
)

// How the CLI on the server's machine finds a credential without a step of the user's:
//
//   - On its first start the server creates an admin token and writes its secret to
//     DATA/admin.token, readable by the server's user only (0600). Deleting the file and
//     restarting the server makes a new one: access to the data directory is access to
//     the server.
//   - Each start also writes a pointer, in the user's configuration directory
//     (~/.config/slipway/servers/HOST_PORT, 0600), naming that file, for the address the
//     server listens on.
//   - The CLI takes --token, else $SLIPWAY_TOKEN, else, for a server on a loopback address
//     only, the pointer of that address, else $SLIPWAY_DATA/admin.token or
//     .slipway/admin.token. A credential on disk is never sent to a server on another host,
//     and only to the process that wrote it: the one DATA/server.pid names must hold the
//     listening socket of the address (listensOn), so that another local user who binds
//     the port (after a crash, or while the server is down) gets nothing.
const (
	adminTokenFile = "admin.token"
	adminTokenName = "local-admin"
	// fileAdminName names the admin token whose secret the server reads from
	// --admin-token-file (file-admin, file-admin-2, ... after each new secret).
	fileAdminName = "file-admin"
	envToken      = "SLIPWAY_TOKEN"
	envTLSCA      = "SLIPWAY_TLS_CA"
	// maxTokenFile bounds what is read from a credential file.
	maxTokenFile = 4 << 10
)

// ensureAdminToken makes sure DATA/admin.token holds an admin token's secret: it creates one
// when the file is missing, under the first free name of local-admin, local-admin-2, ...
func ensureAdminToken(ctx context.Context, tokens *auth.Service, dataDir string, log *slog.Logger) (string, error) {
	path, err := filepath.Abs(filepath.Join(dataDir, adminTokenFile))
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("admin token: %w", err)
	}
	existing, err := tokens.Tokens(ctx)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	name := freeName(existing, adminTokenName)
	created, err := tokens.CreateToken(ctx, slipway.NewToken{Name: name, Role: slipway.RoleAdmin}, slipway.ActorEngine)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if err := writeFileAtomic(path, []byte(created.Secret+"\n")); err != nil {
		// The token exists but no one holds its secret; revoke it so it cannot linger.
		_, _ = tokens.RevokeToken(ctx, name, slipway.ActorEngine, "its secret could not be written")
		return "", fmt.Errorf("admin token: %w", err)
	}
	log.Info("admin token created", "token", name, "file", path)
	return path, nil
}

// freeName returns the first name of base, base-2, base-3, ... that no token has.
func freeName(existing []slipway.Token, base string) string {
	taken := map[string]bool{}
	for _, t := range existing {
		taken[t.Name] = true
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	return name
}

// ensureFileAdminToken makes the secret in path (--admin-token-file: a file the operator
// keeps outside the data directory, such as a Kubernetes Secret) an active admin token. A
// secret the store knows is used as it is; a new one becomes the token file-admin (or the
// first free file-admin-N) and the file-admin tokens made from earlier secrets are revoked,
// so that replacing the secret and restarting the server rotates the credential. A secret
// whose token was revoked or expired is refused rather than revived.
func ensureFileAdminToken(ctx context.Context, tokens *auth.Service, path string, now time.Time, log *slog.Logger) error {
	secret, err := readSecret(path)
	if err != nil {
		return fmt.Errorf("--admin-token-file: %w", err)
	}
	if err := auth.CheckChosenSecret(secret); err != nil {
		return fmt.Errorf("--admin-token-file %s: %w", path, err)
	}
	var current string
	t, err := tokens.TokenBySecret(ctx, secret)
	switch {
	case err == nil && t.Active(now):
		current = t.Name
		log.Info("admin token from file", "token", t.Name, "file", path)
	case err == nil:
		return slipway.Errorf(slipway.EINVALID, "--admin-token-file %s: its secret is token %s's, which is revoked or expired; put a new secret in the file", path, t.Name)
	case slipway.ErrorCode(err) != slipway.ENOTFOUND:
		return fmt.Errorf("--admin-token-file: %w", err)
	default:
		existing, err := tokens.Tokens(ctx)
		if err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
		current = freeName(existing, fileAdminName)
		if _, err := tokens.ImportToken(ctx, slipway.NewToken{Name: current, Role: slipway.RoleAdmin}, secret, slipway.ActorEngine); err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
		log.Info("admin token created from file", "token", current, "file", path)
	}
	// Whatever an earlier start left undone: the file's token is the one active file-admin.
	existing, err := tokens.Tokens(ctx)
	if err != nil {
		return fmt.Errorf("--admin-token-file: %w", err)
	}
	for _, old := range existing {
		if old.Name != current && old.CreatedBy == slipway.ActorEngine && old.Active(now) && isFileAdmin(old.Name) {
			if _, err := tokens.RevokeToken(ctx, old.Name, slipway.ActorEngine, "replaced by a new secret in --admin-token-file"); err != nil {
				return fmt.Errorf("--admin-token-file: revoke the earlier token %s: %w", old.Name, err)
			}
			log.Info("earlier admin token from file revoked", "token", old.Name)
		}
	}
	return nil
}

// isFileAdmin reports whether name is file-admin or file-admin-N.
func isFileAdmin(name string) bool {
	if name == fileAdminName {
		return true
	}
	n, ok := strings.CutPrefix(name, fileAdminName+"-")
	_, err := strconv.Atoi(n)
	return ok && err == nil
}

// writeFileAtomic writes b to path with mode 0600 by a rename, so that no reader sees half.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // gone after the rename; removes it after a failure
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// pointerPath is where the pointer to the credential of the server at hostport is kept, or
// "" when the user has no configuration directory.
func pointerPath(hostport string) string {
	dir, err := os.UserConfigDir()
	if err != nil || dir == "" {
		return ""
	}
	r := strings.NewReplacer(":", "_", "[", "", "]", "", "/", "_")
	return filepath.Join(dir, "slipway", "servers", r.Replace(hostport))
}

// pointerAddrs are the addresses a local CLI may use for a server listening on addr.
func pointerAddrs(addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil
	}
	port := strconv.Itoa(tcp.Port)
	if tcp.IP.IsUnspecified() {
		return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	}
	if tcp.IP.IsLoopback() {
		return []string{net.JoinHostPort(tcp.IP.String(), port)}
	}
	return nil
}

// writePointers records tokenPath for each local address of the server; it returns the
// pointers written, for removePointers.
func writePointers(addr net.Addr, tokenPath string, log *slog.Logger) []string {
	var written []string
	for _, hp := range pointerAddrs(addr) {
		p := pointerPath(hp)
		if p == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			log.Warn("cannot record where the admin token is", "err", err)
			continue
		}
		if err := writeFileAtomic(p, []byte(tokenPath+"\n")); err != nil {
			log.Warn("cannot record where the admin token is", "err", err)
			continue
		}
		written = append(written, p)
	}
	return written
}

// removePointers removes the pointers that still name tokenPath (a later server on the same
// address may have written its own).
func removePointers(pointers []string, tokenPath string) {
	for _, p := range pointers {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == tokenPath {
			_ = os.Remove(p)
		}
	}
}

// readSecret reads a token secret from a file of at most maxTokenFile bytes.
func readSecret(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // reading the user's own credential file is the point
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, maxTokenFile)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", err
	}
	s := strings.TrimSpace(string(b[:n]))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// discoverToken finds a credential for the server at base on this machine: the pointer of
// its address, else the data directory's admin token. Only for a server on a loopback
// address; "" when there is none.
func discoverToken(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return ""
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return ""
	}
	portN, err := strconv.Atoi(port)
	if err != nil {
		return ""
	}
	var files []string
	if p := pointerPath(net.JoinHostPort(ip.String(), port)); p != "" {
		if f, err := readSecretPath(p); err == nil {
			files = append(files, f)
		}
	}
	for _, dir := range []string{os.Getenv(envData), defaultDataDir} {
		if dir != "" {
			files = append(files, filepath.Join(dir, adminTokenFile))
		}
	}
	for _, f := range files {
		if !servedBy(filepath.Dir(f), portN) {
			continue
		}
		if s, err := readSecret(f); err == nil {
			return s
		}
	}
	return ""
}

// servedBy reports whether the server of data directory dir (DATA/server.pid) holds the
// listening socket on port.
func servedBy(dir string, port int) bool {
	b, err := os.ReadFile(filepath.Join(dir, pidFileName)) //nolint:gosec // a data directory of the user's own
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && listensOn(pid, port)
}

// readSecretPath reads the token file path a pointer names.
func readSecretPath(pointer string) (string, error) {
	s, err := readSecret(pointer)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(s) {
		return "", fmt.Errorf("%s does not name an absolute path", pointer)
	}
	return s, nil
}
