package ofrep_test

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"slipway.dev/slipway/ofrep"
)

// benchWriter is a ResponseWriter reused across iterations.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

type benchBody struct{ *bytes.Reader }

func (benchBody) Close() error { return nil }

// benchServe serves one request per iteration in process: the handler's own cost, without
// the network and net/http.
func benchServe(b *testing.B, srv *ofrep.Server, path, body string, wantStatus int, header ...string) {
	u, err := url.Parse(path)
	if err != nil {
		b.Fatal(err)
	}
	rd := bytes.NewReader(nil)
	req := &http.Request{Method: "POST", URL: u, Header: http.Header{}, Body: benchBody{rd}, ContentLength: int64(len(body)), RemoteAddr: "127.0.0.1:1"}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := &benchWriter{h: http.Header{}}
	data := []byte(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(data)
		clear(w.h)
		srv.ServeHTTP(w, req)
		if w.status != wantStatus {
			b.Fatalf("status %d", w.status)
		}
	}
}

func benchServer(b *testing.B) *ofrep.Server {
	srv, _ := newServer(b, ofrep.Config{Metrics: prometheus.NewRegistry()})
	return srv
}

const benchCtx = `{"context":{"targetingKey":"user-123","email":"ann@example.com","plan":"pro","country":"CA"}}`

func BenchmarkSingleStatic(b *testing.B) {
	benchServe(b, benchServer(b), "/ofrep/v1/evaluate/flags/limit", benchCtx, 200)
}

func BenchmarkSingleTargeted(b *testing.B) {
	benchServe(b, benchServer(b), "/ofrep/v1/evaluate/flags/banner", benchCtx, 200)
}

func BenchmarkSingleFractional(b *testing.B) {
	benchServe(b, benchServer(b), "/ofrep/v1/evaluate/flags/headerColor", benchCtx, 200)
}

func BenchmarkBulk(b *testing.B) {
	benchServe(b, benchServer(b), "/ofrep/v1/evaluate/flags", benchCtx, 200)
}

func BenchmarkBulkNotModified(b *testing.B) {
	srv := benchServer(b)
	etag := do(b, srv, "POST", "/ofrep/v1/evaluate/flags", benchCtx).header.Get("ETag")
	benchServe(b, srv, "/ofrep/v1/evaluate/flags", benchCtx, 304, "If-None-Match", etag)
}
