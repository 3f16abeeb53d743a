package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"slipway.dev/slipway"
)

// ringSeconds is how far back Window can look: one bucket per second for ten minutes.
const ringSeconds = 600

// latBuckets is the number of latency buckets kept per second; the bounds grow by half each
// step from 250µs, so the last finite bound is about 48s and quantiles are within ~25%.
const latBuckets = 32

// Metrics is the proxy's per-revision telemetry, shared by every Proxy of a server: Prometheus
// series (slipway_proxy_requests_total, slipway_proxy_request_duration_seconds,
// slipway_proxy_in_flight, labelled app, revision, version) and, for the builtin analysis
// provider, a ring of per-second counts per (app, revision) that Window sums.
//
// Handles are resolved once per table (Proxy.Update); the request path only touches atomics.
type Metrics struct {
	now       func() time.Time
	realClock bool // now is time.Now: record uses the end time the request path has already
	gatherer  prometheus.Gatherer
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inflight  *prometheus.GaugeVec
	bounds    [latBuckets]time.Duration // upper bounds; the last is unbounded

	mu    sync.Mutex // guards the maps; never taken on the request path
	revs  map[seriesKey]*revMetrics
	rings map[ringKey]*ring
}

type seriesKey struct{ app, revision, version string }

type ringKey struct{ app, revision string }

// revMetrics are one (app, revision, version)'s handles, resolved once per table.
type revMetrics struct {
	m        *Metrics
	requests [5]prometheus.Counter // by code class 1xx..5xx
	duration prometheus.Observer
	inflight prometheus.Gauge
	ring     *ring
}

// NewMetrics returns Metrics registered on reg (a new registry when nil). Handler serves reg
// when it is also a prometheus.Gatherer (a *prometheus.Registry is), else only these series.
// Registering twice on one registry reuses the series already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := NewMetricsWithClock(reg, time.Now)
	m.realClock = true
	return m
}

// NewMetricsWithClock is NewMetrics with the clock Window and the per-second ring use.
func NewMetricsWithClock(reg prometheus.Registerer, now func() time.Time) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		now:   now,
		revs:  map[seriesKey]*revMetrics{},
		rings: map[ringKey]*ring{},
	}
	labels := []string{"app", "revision", "version"}
	m.requests = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipway_proxy_requests_total",
		Help: "Requests the proxy answered, by revision and status code class (1xx..5xx).",
	}, append(labels, "code_class")))
	m.duration = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slipway_proxy_request_duration_seconds",
		Help:    "Time from the request reaching the proxy to the end of its response, by revision.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, labels))
	m.inflight = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slipway_proxy_in_flight",
		Help: "Requests the proxy is forwarding right now, by revision.",
	}, labels))
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		own := prometheus.NewRegistry()
		own.MustRegister(m.requests, m.duration, m.inflight)
		m.gatherer = own
	}
	b := 250 * time.Microsecond
	for i := range latBuckets - 1 {
		m.bounds[i] = b
		b += b / 2
	}
	m.bounds[latBuckets-1] = 1<<63 - 1
	return m
}

// register registers c on reg, or returns the collector already registered there under the
// same description. Any other error is a programming error and panics, as MustRegister does.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("proxy: register metrics: " + err.Error())
	}
	return c
}

// Handler serves the registry's metrics in the Prometheus text format (for /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// revision returns the handles of (app, revision, version), creating them once.
func (m *Metrics) revision(app, revision, version string) *revMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := seriesKey{app, revision, version}
	if rm := m.revs[k]; rm != nil {
		return rm
	}
	rk := ringKey{app, revision}
	rg := m.rings[rk]
	if rg == nil {
		rg = &ring{}
		m.rings[rk] = rg
	}
	rm := &revMetrics{
		m:        m,
		duration: m.duration.WithLabelValues(app, revision, version),
		inflight: m.inflight.WithLabelValues(app, revision, version),
		ring:     rg,
	}
	for i, class := range [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		rm.requests[i] = m.requests.WithLabelValues(app, revision, version, class)
	}
	m.revs[k] = rm
	return rm
}

// retain forgets the series and rings of app's revisions that are not in live and have not
// served a request for longer than the ring holds, so that revisions of past rollouts do not
// accumulate.
func (m *Metrics) retain(app string, live map[string]*revision) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := m.now().Unix() - ringSeconds
	for k, rg := range m.rings {
		if k.app != app || live[k.revision] != nil || rg.last.Load() > cutoff {
			continue
		}
		delete(m.rings, k)
		for sk := range m.revs {
			if sk.app == app && sk.revision == k.revision {
				delete(m.revs, sk)
				m.duration.DeleteLabelValues(sk.app, sk.revision, sk.version)
				m.inflight.DeleteLabelValues(sk.app, sk.revision, sk.version)
				for _, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
					m.requests.DeleteLabelValues(sk.app, sk.revision, sk.version, class)
				}
			}
		}
	}
}

// record counts one finished request. It takes no lock and allocates nothing.
// record counts one answered request that took d and ended at end (by the real clock).
func (rm *revMetrics) record(code int, d time.Duration, end time.Time) {
	class := code/100 - 1
	if class < 0 || class > 4 {
		class = 4 // a status outside 1xx..5xx is the proxy's fault
	}
	rm.requests[class].Inc()
	rm.duration.Observe(d.Seconds())
	if !rm.m.realClock {
		end = rm.m.now()
	}
	rm.ring.record(end.Unix(), code, rm.m.bucket(d))
}

// bucket returns the latency bucket of d.
func (m *Metrics) bucket(d time.Duration) int {
	lo, hi := 0, latBuckets-1
	for lo < hi {
		mid := (lo + hi) / 2
		if d <= m.bounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// ring holds ringSeconds per-second slots. Each counter packs the second it belongs to (high
// 32 bits) with its count (low 32 bits), so a writer that finds an older second restarts the
// count with one compare-and-swap: no lock, no lost increments at second boundaries, and a
// reader ignores counts from another lap of the ring.
type ring struct {
	last  atomic.Int64 // the last second a request was recorded
	slots [ringSeconds]slot
}

type slot struct {
	requests, errors5xx, errors4xx atomic.Uint64
	latency                        [latBuckets]atomic.Uint64
}

func (rg *ring) record(sec int64, code, bucket int) {
	if rg.last.Load() != sec {
		rg.last.Store(sec)
	}
	s := &rg.slots[sec%ringSeconds]
	tag := uint32(sec)
	bump(&s.requests, tag)
	switch {
	case code >= 500:
		bump(&s.errors5xx, tag)
	case code >= 400:
		bump(&s.errors4xx, tag)
	}
	bump(&s.latency[bucket], tag)
}

func bump(c *atomic.Uint64, tag uint32) {
	for {
		v := c.Load()
		nv := uint64(tag)<<32 | 1
		if uint32(v>>32) == tag {
			nv = v + 1
		}
		if c.CompareAndSwap(v, nv) {
			return
		}
	}
}

func read(c *atomic.Uint64, tag uint32) int64 {
	v := c.Load()
	if uint32(v>>32) != tag {
		return 0
	}
	return int64(v & 0xffffffff)
}

// Window returns what app's revision served over the last d, rounded up to whole seconds
// and counting the current second; d is clamped to between one second and ten minutes.
// A revision the metrics never saw gives a zero Window (with Since set).
func (m *Metrics) Window(app, revision string, d time.Duration) slipway.RequestWindow {
	n := int64((d + time.Second - 1) / time.Second)
	n = max(1, min(n, ringSeconds))
	end := m.now().Unix()
	first := end - n + 1
	w := slipway.RequestWindow{Since: time.Unix(first, 0)}
	m.mu.Lock()
	rg := m.rings[ringKey{app, revision}]
	m.mu.Unlock()
	if rg == nil {
		return w
	}
	var lat [latBuckets]int64
	for sec := first; sec <= end; sec++ {
		s := &rg.slots[sec%ringSeconds]
		tag := uint32(sec)
		w.Requests += read(&s.requests, tag)
		w.Errors5xx += read(&s.errors5xx, tag)
		w.Errors4xx += read(&s.errors4xx, tag)
		for i := range lat {
			lat[i] += read(&s.latency[i], tag)
		}
	}
	w.RequestRate = float64(w.Requests) / float64(n)
	if w.Requests > 0 {
		w.ErrorRate = float64(w.Errors5xx) / float64(w.Requests)
	}
	var above time.Duration
	for i, c := range lat {
		upTo := m.bounds[i]
		if i == latBuckets-1 {
			upTo = 0 // unbounded
		}
		if c > 0 {
			w.Latency = append(w.Latency, slipway.LatencyBucket{Above: above, UpTo: upTo, Count: c})
		}
		above = m.bounds[i]
	}
	w.P50 = m.quantile(&lat, 0.50)
	w.P95 = m.quantile(&lat, 0.95)
	w.P99 = m.quantile(&lat, 0.99)
	return w
}

// RequestWindow is Window as slipway.RequestMetrics asks for it; it never fails.
func (m *Metrics) RequestWindow(ctx context.Context, app, revision string, d time.Duration) (slipway.RequestWindow, error) {
	return m.Window(app, revision, d), ctx.Err()
}

var _ slipway.RequestMetrics = (*Metrics)(nil)

// quantile estimates the q-quantile of the histogram by linear interpolation inside the
// bucket that holds it; a quantile in the unbounded bucket is reported as its lower bound.
func (m *Metrics) quantile(lat *[latBuckets]int64, q float64) time.Duration {
	var total int64
	for _, c := range lat {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum int64
	for i, c := range lat {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		var lower time.Duration
		if i > 0 {
			lower = m.bounds[i-1]
		}
		if i == latBuckets-1 {
			return lower
		}
		frac := (rank - float64(cum)) / float64(c)
		return lower + time.Duration(frac*float64(m.bounds[i]-lower))
	}
	return m.bounds[latBuckets-2]
}
