package ofrep_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/flagfile"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/ofrep"
)

// clock is a settable clock for rate limits and lastModified.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// compile parses and compiles a flag file at the given revision.
func compile(tb testing.TB, path string, revision int64) *flags.Set {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return compileData(tb, path, data, revision)
}

func compileData(tb testing.TB, name string, data []byte, revision int64) *flags.Set {
	tb.Helper()
	fs, err := flagfile.Parse(name, data)
	if err != nil {
		tb.Fatalf("parse %s: %v", name, err)
	}
	fs.Revision = revision
	set, err := flags.Compile(fs)
	if err != nil {
		tb.Fatalf("compile %s: %v", name, err)
	}
	return set
}

// newServer returns an OFREP server on testdata/flags.json (revision 1) and its Current.
func newServer(tb testing.TB, cfg ofrep.Config) (*ofrep.Server, *flags.Current) {
	tb.Helper()
	cur := flags.NewCurrent(compile(tb, "testdata/flags.json", 1))
	cfg.Flags = cur
	return ofrep.New(cfg), cur
}

// response is a recorded answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request to h in process and records the answer.
func do(tb testing.TB, h http.Handler, method, target, body string, header ...string) response {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}
