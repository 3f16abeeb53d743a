package proxy

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"slipway.dev/slipway"
)

// Backend is one ready instance that may take traffic.
type Backend struct {
	// ID names the instance; its in-flight count (InFlight, Drain) is kept by ID and outlives
	// tables, so an instance keeps its count while the table around it changes.
	ID string `json:"id"`
	// Revision is the revision the instance runs ("" means the key it is listed under).
	Revision string `json:"revision"`
	// Addr is the instance's host:port; the proxy speaks plain HTTP to it.
	Addr string `json:"addr"`
}

// Table is what a Proxy routes by; it is swapped atomically.
type Table struct {
	// Split holds the weights in priority order (new revision first) and the header routes.
	Split slipway.Split `json:"split"`
	// Backends lists, by revision, only the instances that passed readiness.
	Backends map[string][]Backend `json:"backends,omitempty"`
	// Versions maps a revision to its version label (used as a metric label).
	Versions map[string]string `json:"versions,omitempty"`
	// Preview is the revision served on the preview listener ("" for none).
	Preview string `json:"preview,omitempty"`
}

// clone returns a deep copy of t, so that neither the caller of Update nor of Current can
// change a table the request path reads.
func (t Table) clone() Table {
	c := Table{Preview: t.Preview}
	c.Split.Weights = slices.Clone(t.Split.Weights)
	if t.Split.Routes != nil {
		c.Split.Routes = make([]slipway.Route, len(t.Split.Routes))
		for i, r := range t.Split.Routes {
			r.Match = slices.Clone(r.Match)
			c.Split.Routes[i] = r
		}
	}
	if t.Backends != nil {
		c.Backends = make(map[string][]Backend, len(t.Backends))
		for rev, bs := range t.Backends {
			c.Backends[rev] = slices.Clone(bs)
		}
	}
	if t.Versions != nil {
		c.Versions = make(map[string]string, len(t.Versions))
		for k, v := range t.Versions {
			c.Versions[k] = v
		}
	}
	return c
}

// validate returns every problem of t at once as one EINVALID error (nil when t is valid).
// A revision is known when it is listed in the weights or in the backends.
func (t Table) validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	known := map[string]bool{}
	sum := 0
	for i, w := range t.Split.Weights {
		switch {
		case w.Revision == "":
			add("split.weights[%d]: revision is empty", i)
		case known[w.Revision]:
			add("split.weights[%d]: revision %q is listed twice", i, w.Revision)
		}
		if w.Weight < 0 || w.Weight > 100 {
			add("split.weights[%d]: weight %d of revision %q is not between 0 and 100", i, w.Weight, w.Revision)
		}
		known[w.Revision] = true
		sum += w.Weight
	}
	if len(t.Split.Weights) > 0 && sum != 100 {
		add("split.weights: weights sum to %d, want 100", sum)
	}

	ids := map[string]string{}
	for rev, bs := range t.Backends {
		if rev == "" {
			add("backends: revision is empty")
		}
		known[rev] = true
		for i, b := range bs {
			where := fmt.Sprintf("backends[%s][%d]", rev, i)
			if b.ID == "" {
				add("%s: id is empty", where)
			} else if other, dup := ids[b.ID]; dup {
				add("%s: id %q is also used in revision %q", where, b.ID, other)
			} else {
				ids[b.ID] = rev
			}
			if b.Revision != "" && b.Revision != rev {
				add("%s: backend %q says revision %q but is listed under %q", where, b.ID, b.Revision, rev)
			}
			if _, port, err := net.SplitHostPort(b.Addr); err != nil || port == "" {
				add("%s: address %q of backend %q is not host:port", where, b.Addr, b.ID)
			}
		}
	}

	for i, r := range t.Split.Routes {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		where := fmt.Sprintf("split.routes[%d] (%s)", i, name)
		if !known[r.Revision] {
			add("%s: revision %q is neither in the weights nor in the backends", where, r.Revision)
		}
		if len(r.Match) == 0 {
			add("%s: no match: a route without a match would take every request", where)
		}
		for j, m := range r.Match {
			mw := fmt.Sprintf("%s.match[%d]", where, j)
			if (m.Header == "") == (m.Cookie == "") {
				add("%s: want exactly one of header or cookie", mw)
			}
			n := 0
			for _, s := range []string{m.Exact, m.Prefix, m.Regex} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				add("%s: want exactly one of exact, prefix or regex", mw)
			}
			if m.Regex != "" {
				if _, err := regexp.Compile(m.Regex); err != nil {
					add("%s: regex %q: %v", mw, m.Regex, err)
				}
			}
		}
	}

	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems) // map order must not change the message
	return &slipway.Error{Code: slipway.EINVALID, Message: "invalid proxy table", Details: problems}
}

// compiled is a Table precomputed for the request path: everything a request needs is a
// slice index or a pointer away, and nothing in it changes after it is published.
type compiled struct {
	table   Table                // the table as given (deep copy), for Current
	routes  []route              // in order; first match wins
	weights []weighted           // in priority order, zero weights included (for fallback)
	others  []*revision          // the revisions not weighted, by name: the last fallback
	byName  map[string]*revision // every revision of the table
	preview *revision            // nil when there is none or it is unknown
	ids     map[string]bool      // IDs of every backend in the table
}

// weighted is one entry of the split: its revision owns buckets [prev cum, cum).
type weighted struct {
	rev *revision
	cum uint32
}

// revision is one revision's routing state within one table.
type revision struct {
	name     string
	version  string
	backends []*backend
	metrics  *revMetrics // nil when the proxy has no Metrics
	position int         // index in compiled.weights, -1 when not weighted
}

// route is a compiled slipway.Route.
type route struct {
	rev     *revision
	matches []matcher
}

// matcher is a compiled slipway.HeaderMatch.
type matcher struct {
	header string // canonical header key; "" for a cookie match
	cookie string
	exact  string
	prefix string
	re     *regexp.Regexp
	kind   matchKind
}

type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchRegex
)

func (m *matcher) test(v string) bool {
	switch m.kind {
	case matchExact:
		return v == m.exact
	case matchPrefix:
		return strings.HasPrefix(v, m.prefix)
	case matchRegex:
		return m.re.MatchString(v)
	}
	return false
}

// match reports whether the request carries a header value (any of them) or cookie that
// matches.
func (m *matcher) match(rs *reqState) bool {
	if m.header != "" {
		for i := 0; ; {
			v, next, ok := rs.header(m.header, i)
			if !ok {
				return false
			}
			if m.test(v) {
				return true
			}
			i = next
		}
	}
	v, ok := rs.cookie(m.cookie)
	return ok && m.test(v)
}

// match reports whether the request matches every entry of the route.
func (rt *route) match(rs *reqState) bool {
	for i := range rt.matches {
		if !rt.matches[i].match(rs) {
			return false
		}
	}
	return true
}

// compile precomputes t (which must be valid). backendFor returns the long-lived state of a
// table backend and metricsFor the metric handles of a revision (nil allowed).
func compile(t Table, backendFor func(Backend) *backend, metricsFor func(rev, version string) *revMetrics) *compiled {
	c := &compiled{table: t, byName: map[string]*revision{}, ids: map[string]bool{}}
	get := func(name string) *revision {
		if v := c.byName[name]; v != nil {
			return v
		}
		v := &revision{name: name, version: t.Versions[name], position: -1}
		if metricsFor != nil {
			v.metrics = metricsFor(name, v.version)
		}
		c.byName[name] = v
		return v
	}
	var cum uint32
	for i, w := range t.Split.Weights {
		v := get(w.Revision)
		v.position = i
		cum += uint32(w.Weight)
		c.weights = append(c.weights, weighted{rev: v, cum: cum})
	}
	revs := make([]string, 0, len(t.Backends))
	for rev := range t.Backends {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	for _, rev := range revs {
		v := get(rev)
		for _, b := range t.Backends[rev] {
			b.Revision = rev
			c.ids[b.ID] = true
			v.backends = append(v.backends, backendFor(b))
		}
	}
	for _, r := range t.Split.Routes {
		rt := route{rev: get(r.Revision)}
		for _, m := range r.Match {
			cm := matcher{cookie: m.Cookie, exact: m.Exact, prefix: m.Prefix}
			if m.Header != "" {
				cm.header = textproto.CanonicalMIMEHeaderKey(m.Header)
			}
			switch {
			case m.Exact != "":
				cm.kind = matchExact
			case m.Prefix != "":
				cm.kind = matchPrefix
			default:
				cm.kind = matchRegex
				cm.re = regexp.MustCompile(m.Regex) // validated by Table.validate
			}
			rt.matches = append(rt.matches, cm)
		}
		c.routes = append(c.routes, rt)
	}
	if t.Preview != "" {
		c.preview = c.byName[t.Preview]
	}
	for _, name := range slices.Sorted(maps.Keys(c.byName)) {
		if v := c.byName[name]; v.position < 0 {
			c.others = append(c.others, v)
		}
	}
	return c
}

// routed returns the revision of the first route the request matches (nil for none).
func (c *compiled) routed(rs *reqState) *revision {
	for i := range c.routes {
		if c.routes[i].match(rs) {
			return c.routes[i].rev
		}
	}
	return nil
}

// split returns the revision that owns bucket b (0-99), or when it has no ready backend the
// next revision in priority order (wrapping around) that has one, or else the first other
// revision of the table (by name) that has one; nil if none has.
func (c *compiled) split(b uint32) *revision {
	n := len(c.weights)
	i := 0
	for i < n-1 && b >= c.weights[i].cum {
		i++
	}
	return c.fallback(i)
}

// fallback returns the first revision with a ready backend among the weights, starting at
// index i and wrapping around, then among the revisions not weighted. A request is never
// sent to a revision with no ready instance, nor refused, while any revision of the table has
// one: the engine keeps traffic off such revisions itself (engine.Guard), and this holds even
// when a table reaches the proxy before the instances it names are ready.
func (c *compiled) fallback(i int) *revision {
	n := len(c.weights)
	for j := range n {
		v := c.weights[(i+j)%n].rev
		if len(v.backends) > 0 {
			return v
		}
	}
	for _, v := range c.others {
		if len(v.backends) > 0 {
			return v
		}
	}
	return nil
}

// cookieValue returns the value of the first cookie called name in h's Cookie headers,
// without allocating (http.Request.Cookie parses every cookie into new values).
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		if v, ok := cookieIn(line, name); ok {
			return v, true
		}
	}
	return "", false
}

// cookieIn returns the value of the first cookie called name in one Cookie header line.
func cookieIn(line, name string) (string, bool) {
	for len(line) > 0 {
		var part string
		if i := strings.IndexByte(line, ';'); i >= 0 {
			part, line = line[:i], line[i+1:]
		} else {
			part, line = line, ""
		}
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok || k != name {
			continue
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}

// bucketOf maps a user key to a bucket in 0..99 by a hash that is stable across processes
// and releases: 32-bit FNV-1a followed by murmur3's fmix32 finalizer (which spreads keys that
// differ only in their last bytes), scaled by (h*100)>>32.
func bucketOf(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return uint32((uint64(h) * 100) >> 32)
}
