package slipway

import (
	"context"
	"time"
)

// RequestWindow is what one revision of an app served over a recent period, as the
// platform's traffic layer counted it (the local platform's proxy; on another platform,
// whatever measures its traffic per revision).
type RequestWindow struct {
	Requests  int64 `json:"requests"`
	Errors5xx int64 `json:"errors5xx"`
	Errors4xx int64 `json:"errors4xx"`
	// RequestRate is Requests per second over the window.
	RequestRate float64 `json:"requestRate"`
	// ErrorRate is the share (0-1) of Requests answered 5xx; 0 when there were none.
	ErrorRate float64 `json:"errorRate"`
	// P50, P95 and P99 are latency quantiles (zero when there were no requests).
	P50 time.Duration `json:"p50"`
	P95 time.Duration `json:"p95"`
	P99 time.Duration `json:"p99"`
	// Since is the start of the window.
	Since time.Time `json:"since"`
	// Latency is the window's latency histogram: the requests in each bucket, in order, that
	// took more than Above and at most UpTo (UpTo is 0 for the last, unbounded bucket). Empty
	// buckets may be left out.
	Latency []LatencyBucket `json:"latency,omitempty"`
}

// LatencyBucket is one bucket of a RequestWindow's latency histogram.
type LatencyBucket struct {
	Above time.Duration `json:"above"`
	UpTo  time.Duration `json:"upTo"`
	Count int64         `json:"count"`
}

// SlowerThan returns how many of the window's requests may have taken longer than limit:
// every request in a bucket that reaches beyond it. A bucket that straddles the limit counts
// whole, so the count errs towards slow, by at most the width of that one bucket.
func (w RequestWindow) SlowerThan(limit time.Duration) int64 {
	var n int64
	for _, b := range w.Latency {
		if b.UpTo == 0 || b.UpTo > limit {
			n += b.Count
		}
	}
	return n
}

// RequestMetrics measures what each revision of an app served; the builtin analysis
// provider reads it. An error means there is no measurement, never an empty window: the
// provider then reports an error, which never counts as a pass.
type RequestMetrics interface {
	RequestWindow(ctx context.Context, app, revision string, d time.Duration) (RequestWindow, error)
}
