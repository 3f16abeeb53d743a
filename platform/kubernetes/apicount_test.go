package kubernetes_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/kubernetes"
)

// apiCount counts the requests a client config makes to the API server, by kind (read,
// write, watch), by what made them (an Apply of the engine's, or anything else: the
// informers and the platform's background worker) and by method and resource.
type apiCount struct {
	mu sync.Mutex
	n  map[request]int
	// transports are the round trippers wrapped, whose idle connections close closes.
	transports []http.RoundTripper
	// trace names an app whose Applies' requests are listed in traced.
	trace  string
	traced []string
}

// request is one kind of request: its class ("read", "write", "watch"), whether an Apply
// made it, and its method and resource ("PATCH httproutes", "GET pods" for a list).
type request struct {
	class string
	apply bool
	what  string
}

// inApply marks the context of an Apply of the platform, with the app's name, so that the
// requests it makes are told from the background worker's.
type inApply struct{}

// config returns a copy of cfg whose requests are counted.
func (c *apiCount) config(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		c.mu.Lock()
		c.transports = append(c.transports, rt)
		c.mu.Unlock()
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			c.count(r)
			return rt.RoundTrip(r)
		})
	}
	return out
}

// count records r.
func (c *apiCount) count(r *http.Request) {
	q := r.URL.Query()
	app, _ := r.Context().Value(inApply{}).(string)
	k := request{apply: app != "", what: r.Method + " " + resourceOf(r.URL.Path)}
	switch {
	case r.Method == http.MethodGet && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		k.class, k.what = "watch", "WATCH "+resourceOf(r.URL.Path)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		k.class = "read"
	default:
		k.class = "write"
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[request]int{}
	}
	c.n[k]++
	if app != "" && app == c.trace {
		c.traced = append(c.traced, k.what)
	}
	c.mu.Unlock()
}

// tracedSoFar returns how many requests of the traced app's Applies there were.
func (c *apiCount) tracedSoFar() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.traced)
}

// tracedFrom returns the requests of the traced app's Applies from the i-th on.
func (c *apiCount) tracedFrom(i int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.traced[i:])
}

// resourceOf names the resource of an API path: "replicasets" for
// /apis/apps/v1/namespaces/NS/replicasets/NAME, "discovery" for a group version's path.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			return parts[i+2]
		}
	}
	switch {
	case len(parts) == 3 && parts[0] == "apis", len(parts) == 2 && parts[0] == "api":
		return "discovery"
	case len(parts) > 0:
		return parts[len(parts)-1]
	}
	return path
}

// snapshot returns the counts so far.
func (c *apiCount) snapshot() tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tally(maps.Clone(c.n))
}

// close closes the idle connections of the wrapped transports.
func (c *apiCount) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.transports {
		utilnet.CloseIdleConnectionsFor(rt)
	}
}

// tally is a snapshot of an apiCount.
type tally map[request]int

// since returns the requests of t made after the snapshot before was taken.
func (t tally) since(before tally) tally {
	out := tally{}
	for k, n := range t {
		if d := n - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// sum counts the requests of class (any class when "") made by an Apply (apply true) or
// not, or by either (apply nil).
func (t tally) sum(class string, apply *bool) int {
	n := 0
	for k, v := range t {
		if (class == "" || k.class == class) && (apply == nil || k.apply == *apply) {
			n += v
		}
	}
	return n
}

// String lists the requests on one line, by what made them and kind, the most frequent
// first: "120 apply PATCH services, 1 background WATCH httproutes".
func (t tally) String() string {
	keys := slices.Collect(maps.Keys(t))
	slices.SortFunc(keys, func(a, b request) int {
		if t[a] != t[b] {
			return t[b] - t[a]
		}
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		by := "background"
		if k.apply {
			by = "apply"
		}
		parts = append(parts, fmt.Sprintf("%d %s %s", t[k], by, k.what))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// samples collects durations while on.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
	on bool
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	if s.on {
		s.d = append(s.d, d)
	}
	s.mu.Unlock()
}

// start drops what was collected and collects from now on.
func (s *samples) start() {
	s.mu.Lock()
	s.d, s.on = nil, true
	s.mu.Unlock()
}

// quantile returns the q-quantile in milliseconds (0 without samples).
func (s *samples) quantile(q float64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return 0
	}
	d := slices.Clone(s.d)
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
}

func (s *samples) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

// timedPlatform is the kubernetes platform as the engine sees it, timing each Apply (from
// the engine handing over a desired state until the platform returns, its writes made and
// in its caches) and how long until Observe first reports a split the engine asked for,
// and marking the requests an Apply makes (inApply).
type timedPlatform struct {
	*kubernetes.Platform
	apply, visible *samples
	api            *apiCount
	// trace lists each Apply of the app api.trace names: when, what it asked, what it sent.
	trace []string

	mu      sync.Mutex
	applies int
	asked   map[string]askedSplit // by app: the last split applied
}

// askedSplit is a split an Apply asked for, when, and whether Observe has shown it since.
type askedSplit struct {
	split slipway.Split
	at    time.Time
	seen  bool
}

func newTimedPlatform(p *kubernetes.Platform, api *apiCount) *timedPlatform {
	return &timedPlatform{Platform: p, api: api, apply: &samples{}, visible: &samples{}, asked: map[string]askedSplit{}}
}

func (t *timedPlatform) Apply(ctx context.Context, d slipway.Desired) error {
	start := time.Now()
	traced := t.api.tracedSoFar()
	err := t.Platform.Apply(context.WithValue(ctx, inApply{}, d.App), d)
	took := time.Since(start)
	t.apply.add(took)
	t.mu.Lock()
	if d.App == t.api.trace {
		t.trace = append(t.trace, fmt.Sprintf("%s %s: %s in %.0f ms", start.Format("15:04:05.000"), desiredString(d),
			strings.Join(t.api.tracedFrom(traced), ", "), float64(took.Microseconds())/1000))
	}
	t.applies++
	if a, ok := t.asked[d.App]; !ok || !a.split.Equal(d.Split) {
		t.asked[d.App] = askedSplit{split: d.Split.Clone(), at: start}
	}
	t.mu.Unlock()
	return err
}

func (t *timedPlatform) Observe(ctx context.Context, app string) (slipway.Observed, error) {
	obs, err := t.Platform.Observe(ctx, app)
	if err != nil {
		return obs, err
	}
	t.mu.Lock()
	if a, ok := t.asked[app]; ok && !a.seen && obs.Split.Equal(a.split) {
		a.seen = true
		t.asked[app] = a
		t.visible.add(time.Since(a.at))
	}
	t.mu.Unlock()
	return obs, nil
}

// appliesSoFar returns how many Applies the engine made.
func (t *timedPlatform) appliesSoFar() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.applies
}

// desiredString says what d asks in a few words: "v1×2 v2×1, split v2=20 v1=80".
func desiredString(d slipway.Desired) string {
	var b strings.Builder
	for i, pl := range d.Revisions {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s×%d", pl.Revision.Version, pl.Replicas)
	}
	version := map[string]string{}
	for _, pl := range d.Revisions {
		version[pl.Revision.ID] = pl.Revision.Version
	}
	b.WriteString(", split")
	for _, w := range d.Split.Weights {
		fmt.Fprintf(&b, " %s=%d", version[w.Revision], w.Weight)
	}
	return b.String()
}

// traceOf returns the trace of the traced app's Applies, one a line.
func (t *timedPlatform) traceOf() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.trace, "\n")
}
