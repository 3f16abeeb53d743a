package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/dataplane"
)

// The traffic floor right after a restart of the server.
//
// What users see depends on the proxy's table: the split it has in effect and the ready
// instances of each revision (a revision whose weight is above 0 but that has no ready
// instance passes its share on to the next one that has). The proxies run in the data plane
// process, which outlives the server, so the floor is checked on the table the data plane
// has in effect, sampled on its control socket every floorPoll (a table lists only the
// instances the server found ready), and not on which instances happened to answer: on a
// busy machine the proxy rightly avoids an instance that is slow for a moment, and
// counting answers would take that for an instance missing from the table.
//
// A sample is judged only once a request through the app's listener was answered after the
// restart. Requests through the listener also catch the proxy answering that the app has
// no ready instance at all.

// floorPoll is how often an app's status is sampled after a restart.
const floorPoll = 20 * time.Millisecond

// floorRate is how many requests per second go through an app's listener after a restart.
const floorRate = 100

// floorSample is an app's table at one moment, as its status reported it.
type floorSample struct {
	at    time.Time // when it was asked for
	split []struct {
		Revision string `json:"revision"`
		Weight   int    `json:"weight"`
	}
	ready   map[string]int    // ready instances by revision
	version map[string]string // version labels by revision
}

// floorWatch samples one app's status and sends requests through its listener until it is
// stopped.
type floorWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	firstAnswer time.Time // the first answer through the listener
	noInstance  int       // 503s from the proxy: no ready instance
	samples     []floorSample
}

// watchFloor starts watching app: the table the data plane of data has in effect, and the
// app's listener at url.
func watchFloor(data, app, url string) *floorWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &floorWatch{cancel: cancel}
	w.wg.Go(func() { w.sample(ctx, data, app) })
	w.wg.Go(func() { w.request(ctx, url) })
	return w
}

func (w *floorWatch) sample(ctx context.Context, data, app string) {
	c := dataplane.Dial(data)
	defer c.CloseIdleConnections()
	tick := time.NewTicker(floorPoll)
	defer tick.Stop()
	for {
		at := time.Now()
		if apps, err := c.State(ctx); err == nil {
			t := apps[app].Table
			s := floorSample{at: at, ready: map[string]int{}, version: t.Versions}
			for _, wt := range t.Split.Weights {
				s.split = append(s.split, struct {
					Revision string `json:"revision"`
					Weight   int    `json:"weight"`
				}{wt.Revision, wt.Weight})
			}
			for rev, bs := range t.Backends {
				s.ready[rev] = len(bs)
			}
			w.mu.Lock()
			w.samples = append(w.samples, s)
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *floorWatch) request(ctx context.Context, url string) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 8)
	tick := time.NewTicker(time.Second / floorRate)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // slow answers: skip a beat rather than pile up
		}
		wg.Go(func() {
			defer func() { <-sem }()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			now := time.Now()
			w.mu.Lock()
			defer w.mu.Unlock()
			switch {
			case err != nil:
			case resp.StatusCode == http.StatusOK && resp.Header.Get("X-Demo-Version") != "":
				if w.firstAnswer.IsZero() || now.Before(w.firstAnswer) {
					w.firstAnswer = now
				}
			case resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(body, []byte("no ready instance")):
				w.noInstance++
			}
		})
	}
}

// stop ends the watch and returns what broke the floor.
func (w *floorWatch) stop() []string {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	if w.noInstance > 0 {
		out = append(out, fmt.Sprintf("the proxy answered %d requests with 503: no ready instance", w.noInstance))
	}
	if w.firstAnswer.IsZero() {
		return append(out, "no answer through the listener after the restart")
	}
	if len(w.samples) == 0 {
		return append(out, "no table sampled from the data plane")
	}
	var from, last time.Time
	var what string
	flush := func() {
		if !from.IsZero() {
			out = append(out, fmt.Sprintf("from %v to %v after the first answer: %s",
				from.Sub(w.firstAnswer).Round(time.Millisecond), last.Sub(w.firstAnswer).Round(time.Millisecond), what))
			from = time.Time{}
		}
	}
	for _, s := range w.samples {
		if !s.at.After(w.firstAnswer) {
			continue
		}
		if ready, desc := s.serving(); ready < crashReplicas {
			if from.IsZero() {
				from, what = s.at, fmt.Sprintf("%d ready instances take the traffic, want at least %d (%s)", ready, crashReplicas, desc)
			}
			last = s.at
			continue
		}
		flush()
	}
	flush()
	return out
}

// serving returns how many ready instances the revisions that get traffic have between
// them, as the proxy splits it: each weight goes to its revision, or when that has no ready
// instance to the next one in the split's order (wrapping around) that has.
func (s floorSample) serving() (int, string) {
	share := map[string]int{}
	n := len(s.split)
	for i, w := range s.split {
		if w.Weight <= 0 {
			continue
		}
		for j := range n {
			if r := s.split[(i+j)%n].Revision; s.ready[r] > 0 {
				share[r] += w.Weight
				break
			}
		}
	}
	ready := 0
	var desc []string
	for _, w := range s.split {
		if share[w.Revision] > 0 {
			ready += s.ready[w.Revision]
		}
		desc = append(desc, fmt.Sprintf("%s: weight %d, %d%% of the traffic, %d ready", s.version[w.Revision], w.Weight, share[w.Revision], s.ready[w.Revision]))
	}
	return ready, strings.Join(desc, "; ")
}

// adminToken reads the admin token's secret the server wrote in its data directory.
func adminToken(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
