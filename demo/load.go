package demo

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// VersionHeader is the header in which the demo service names the version that answered.
const VersionHeader = "X-Demo-Version"

// Load defaults.
const (
	DefaultRate    = 250
	DefaultWorkers = 32
	DefaultTimeout = 5 * time.Second
)

// Load sends GET requests to URL at a steady Rate and counts the answers by the version that
// served them (the X-Demo-Version header): a load generator that sees what users see.
// An answer is a failure when it is not 2xx or the request got no answer; a failure
// without a version header (the proxy's own 502 or 503, a refused connection, a timeout) is
// counted under the version "".
//
// Set the fields, then call Run; Counts may be called at any time.
type Load struct {
	// URL is what every request GETs.
	URL string
	// Rate is requests per second (DefaultRate when 0).
	Rate int
	// Workers bounds the requests in flight (DefaultWorkers when 0).
	Workers int
	// Client sends the requests; a client of its own, with DefaultTimeout, when nil.
	Client *http.Client
	// Now is the clock stamping first and last answers; time.Now when nil.
	Now func() time.Time

	mu     sync.Mutex
	counts map[string]*Count
}

// Count is what one version answered.
type Count struct {
	Requests int64
	Failed   int64
	// FirstSeen and LastSeen are when its first and last answers arrived.
	FirstSeen, LastSeen time.Time
	// FirstFailure and LastFailure are when its first and last failures arrived (zero for none).
	FirstFailure, LastFailure time.Time
}

// Run sends requests until ctx ends and returns nil after every request in flight has
// finished. The rate is kept by a ticker: a tick that finds every worker busy is skipped, so
// a slow target gets less load rather than a burst.
func (l *Load) Run(ctx context.Context) error {
	rate := l.Rate
	if rate <= 0 {
		rate = DefaultRate
	}
	workers := l.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	client := l.Client
	if client == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: DefaultTimeout}
	}
	now := l.Now
	if now == nil {
		now = time.Now
	}
	tokens := make(chan struct{}, workers)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(tokens)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	})
	for range workers {
		g.Go(func() error {
			l.work(gctx, tokens, client, now)
			return nil
		})
	}
	return g.Wait()
}

// work sends one request per token until tokens is closed or ctx ends.
func (l *Load) work(ctx context.Context, tokens <-chan struct{}, client *http.Client, now func() time.Time) {
	for range tokens {
		version, ok := l.get(ctx, client)
		if !ok && ctx.Err() != nil {
			return // cut short by the end of the run, not a failure
		}
		l.record(version, ok, now())
	}
}

// get sends one request and reports who answered and whether it succeeded.
func (l *Load) get(ctx context.Context, client *http.Client) (version string, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
	if err != nil {
		return "", false
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.Header.Get(VersionHeader), err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299
}

func (l *Load) record(version string, ok bool, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]*Count{}
	}
	c := l.counts[version]
	if c == nil {
		c = &Count{FirstSeen: at}
		l.counts[version] = c
	}
	c.Requests++
	c.LastSeen = at
	if !ok {
		c.Failed++
		if c.FirstFailure.IsZero() {
			c.FirstFailure = at
		}
		c.LastFailure = at
	}
}

// Counts returns a copy of the counts so far, by version.
func (l *Load) Counts() map[string]Count {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Count, len(l.counts))
	for v, c := range l.counts {
		out[v] = *c
	}
	return out
}
