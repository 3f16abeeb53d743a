package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2E_Auth drives the built server and CLI as a user and as an attacker would: the CLI
// finds the server's own admin token with no step of the user's, the browser attack of a
// web page is refused and runs nothing, tokens of each role do what their role allows, a
// revoked token is refused, and events name the token and the peer.
func TestE2E_Auth(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })

	// The server's admin credential: in the data directory, its user's only.
	fi, err := os.Stat(filepath.Join(e.data, adminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", adminTokenFile, fi.Mode().Perm())
	}
	if out := e.must(0, "version"); !strings.Contains(out, "server: ") || strings.Contains(out, "unknown (") {
		t.Errorf("version: %q", out)
	}
	if out := e.must(0, "token", "whoami"); !strings.HasPrefix(out, "local-admin (role admin") {
		t.Errorf("whoami: %q", out)
	}

	// A web page's request: text/plain, from another origin, to a rebound name. The job it
	// declares would create marker.
	marker := filepath.Join(e.dir, "pwned")
	attack := `{"set":{"apps":[{"name":"pwn","replicas":1,"run":{"command":"x"},"strategy":{"canary":{"steps":[{"analysis":{"templates":["pwn"]}}]}}}],
"templates":[{"name":"pwn","metrics":[{"name":"m","provider":{"job":{"command":"touch","args":["` + marker + `"]}}}]}]}}`
	for _, hdr := range [][]string{
		{"Content-Type", "text/plain", "Origin", "https://evil.example", "Host", "evil.example:7070"},
		{"Content-Type", "text/plain"},
		{"Content-Type", "application/json", "Origin", "https://evil.example"},
		{"Content-Type", "application/json", "Host", "evil.example:7070"},
		{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"},
		{"Content-Type", "application/json", "X-Slipway-Actor", "admin"},
	} {
		req, _ := http.NewRequest("POST", e.server+"/api/v1/apply", strings.NewReader(attack))
		for i := 0; i < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 && resp.StatusCode != 403 && resp.StatusCode != 415 {
			t.Errorf("attack %v: status %d, want a refusal", hdr, resp.StatusCode)
		}
	}
	if out := e.must(0, "get", "apps"); strings.Contains(out, "pwn") {
		t.Errorf("an attack applied its app:\n%s", out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("an attack ran its command")
	}

	// Tokens by role.
	viewer := strings.TrimSpace(e.must(0, "token", "create", "dash", "--role", "viewer"))
	scoped := strings.TrimSpace(e.must(0, "token", "create", "web-team", "--role", "deployer", "--apps", "web*", "--expires", "30d"))
	if !strings.HasPrefix(viewer, "slw_") || !strings.HasPrefix(scoped, "slw_") {
		t.Fatalf("secrets %q %q", viewer, scoped)
	}
	asViewer, asScoped := []string{"SLIPWAY_TOKEN=" + viewer}, []string{"SLIPWAY_TOKEN=" + scoped}
	// The apps alone: a template is shared, beyond an app-scoped token.
	b, _ := os.ReadFile(e.writeApp("v1"))
	app, tmpl, _ := strings.Cut(string(b), "\n---")
	web, apiFile, tmplFile := filepath.Join(e.dir, "web-only.yaml"), filepath.Join(e.dir, "api.yaml"), filepath.Join(e.dir, "tmpl.yaml")
	if err := os.WriteFile(web, []byte(app), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmplFile, []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.runWith(asScoped, "apply", "-f", tmplFile); code != 1 || !strings.Contains(errOut, "without an app scope") {
		t.Errorf("scoped apply of a template: exit %d, %s", code, errOut)
	}
	e.must(0, "apply", "-f", tmplFile)
	if err := os.WriteFile(apiFile, []byte(strings.Replace(app, "name: web", "name: api", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.runWith(asViewer, "apply", "-f", web); code != 1 || !strings.Contains(errOut, "needs role deployer") {
		t.Errorf("viewer apply: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.runWith(asViewer, "plan", "-f", web); code != 2 {
		t.Errorf("viewer plan: exit %d, %s; a viewer may plan", code, errOut)
	}
	if _, errOut, code := e.runWith(asScoped, "apply", "-f", apiFile); code != 1 || !strings.Contains(errOut, "may not change app \"api\"") {
		t.Errorf("scoped apply of api: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.runWith(asScoped, "apply", "-f", web); code != 0 {
		t.Fatalf("scoped apply of web: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.runWith(asScoped, "token", "list"); code != 1 || !strings.Contains(errOut, "needs role admin") {
		t.Errorf("deployer token list: exit %d, %s", code, errOut)
	}
	if _, _, code := e.runWith(asViewer, "status", "web"); code != 0 {
		t.Errorf("viewer status: exit %d", code)
	}
	list := e.must(0, "token", "list")
	for _, want := range []string{"dash", "viewer", "web-team", "web*", "local-admin"} {
		if !strings.Contains(list, want) {
			t.Errorf("token list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, viewer) || strings.Contains(list, scoped) {
		t.Error("token list shows a secret")
	}
	e.must(0, "token", "revoke", "dash", "--reason", "left the team")
	if _, errOut, code := e.runWith(asViewer, "status", "web"); code != 1 || !strings.Contains(errOut, "not valid") {
		t.Errorf("revoked token: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.runWith([]string{"SLIPWAY_TOKEN=slw_nothing"}, "status", "web"); code != 1 || !strings.Contains(errOut, "not valid") {
		t.Errorf("unknown token: exit %d, %s", code, errOut)
	}

	// Events name the token and the peer; a client cannot choose who it is.
	var evs []struct{ Kind, Actor, Peer, Reason string }
	if err := json.Unmarshal([]byte(e.must(0, "events", "web", "-o", "json")), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Actor != "web-team" || !strings.HasPrefix(evs[0].Peer, "127.0.0.1:") {
		t.Errorf("first event of web: %+v; want actor web-team from 127.0.0.1", evs)
	}
	if err := json.Unmarshal([]byte(e.must(0, "events", "-o", "json")), &evs); err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, ev := range evs {
		revoked = revoked || (ev.Kind == "token.revoked" && ev.Actor == "local-admin" && ev.Reason == "left the team")
	}
	if !revoked {
		t.Errorf("no token.revoked event by local-admin: %+v", evs)
	}

	// A restart keeps the same credential; a deleted one is made anew under a new name.
	e.stopServer(os.Interrupt)
	if err := os.Remove(filepath.Join(e.data, adminTokenFile)); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	if out := e.must(0, "token", "whoami"); !strings.HasPrefix(out, "local-admin-2 ") {
		t.Errorf("whoami after the admin token file was deleted: %q", out)
	}
}

// TestE2E_ServerRefusesAnExposedPlaintextListener checks that the server will not take
// tokens in clear text from other machines unless told to.
func TestE2E_ServerRefusesAnExposedPlaintextListener(t *testing.T) {
	bin := slipwayBin(t)
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:0"},
		{"--listen", ":0"},
		{"--listen", "127.0.0.1:0", "--tls-cert", "x.pem"},
	} {
		cmd := exec.Command(bin, append([]string{"server", "--platform", "sim", "--data", t.TempDir()}, args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--tls-") {
			t.Errorf("server %v: %v\n%s; want a refusal naming the TLS flags", args, err, out)
		}
	}
}

// TestE2E_TLS serves the API over HTTPS with a certificate of the test's own CA: the CLI
// trusts it through --tls-ca, and refuses a server it cannot verify.
func TestE2E_TLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir(), serverFlags: []string{"--tls-cert", cert, "--tls-key", key}}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })
	if !strings.HasPrefix(e.server, "https://") {
		t.Fatalf("server address %s, want https", e.server)
	}
	if out, errOut, code := e.run("token", "whoami", "--tls-ca", ca); code != 0 || !strings.HasPrefix(out, "local-admin") {
		t.Fatalf("whoami over TLS: exit %d, %s%s", code, out, errOut)
	}
	if _, errOut, code := e.run("token", "whoami"); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without --tls-ca: exit %d, %s; want a certificate error", code, errOut)
	}
	plain := strings.Replace(e.server, "https://", "http://", 1)
	resp, err := http.Get(plain + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the TLS listener answered plain HTTP")
		}
	}
}

// writeTestPKI writes a CA certificate and a server certificate for 127.0.0.1 signed by it,
// and returns their paths and the server key's.
func writeTestPKI(t *testing.T, dir string) (caPath, certPath, keyPath string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
