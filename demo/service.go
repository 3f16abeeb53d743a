// Package demo is slipway's demo: a small HTTP service that reports its version and can be
// told to fail a share of requests or to add latency (Service), used by `slipway demo`, the
// end-to-end tests and the benchmarks, and a steady load generator that counts answers by the
// version that served them (Load, load.go).
//
// Start reading at Service, then Load.
package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Service is the demo service's HTTP handler.
type Service struct {
	// Version is what the service reports (and the X-Demo-Version header).
	Version string
	// Instance names this process, for answers that show load spreading.
	Instance string
	// ErrorRate is the share of requests to / answered 500 (0 to 1).
	ErrorRate float64
	// Latency is added to every answer of /.
	Latency time.Duration
}

// Answer is the JSON body of GET /.
type Answer struct {
	Version  string `json:"version"`
	Instance string `json:"instance"`
	OK       bool   `json:"ok"`
}

// ServeHTTP serves:
//
//	GET /          {"version": ..., "instance": ..., "ok": true}, or 500 for ErrorRate of requests
//	GET /healthz   200 "ok" (readiness and liveness)
//	GET /stream    five server-sent events, 50 ms apart
//	POST /echo     the request body back
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Demo-Version", s.Version)
	switch r.URL.Path {
	case "/healthz":
		_, _ = w.Write([]byte("ok\n"))
	case "/stream":
		s.stream(w, r)
	case "/echo":
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	default:
		if s.Latency > 0 {
			select {
			case <-time.After(s.Latency):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if s.ErrorRate > 0 && rand.Float64() < s.ErrorRate {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(Answer{Version: s.Version, Instance: s.Instance})
			return
		}
		_ = json.NewEncoder(w).Encode(Answer{Version: s.Version, Instance: s.Instance, OK: true})
	}
}

func (s *Service) stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	f, _ := w.(http.Flusher)
	for i := range 5 {
		fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, s.Version)
		if f != nil {
			f.Flush()
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
}

// ParseErrorRate reads an error rate given as "0.2" or "20%".
func ParseErrorRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	pct := len(s) > 0 && s[len(s)-1] == '%'
	if pct {
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("error rate %q is not a number like 0.2 or 20%%", s)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("error rate %v is out of range; use 0 to 1 (or 0%% to 100%%)", v)
	}
	return v, nil
}
