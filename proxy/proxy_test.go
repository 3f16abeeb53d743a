package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"

	"slipway.dev/slipway/slipwaytest"
)

// twoRevisions starts a backend for "canary" and one for "stable" and returns the backends
// map.
func twoRevisions(tb testing.TB) map[string][]Backend {
	tb.Helper()
	return map[string][]Backend{
		"canary": {{ID: "c1", Addr: startBackend(tb, named("canary"))}},
		"stable": {{ID: "s1", Addr: startBackend(tb, named("stable"))}},
	}
}

func TestProxy_SplitProportions(t *testing.T) {
	p, url := newProxy(t, Config{})
	mustUpdate(t, p, Table{Split: weights("canary", 30, "stable", 70), Backends: twoRevisions(t)})
	const n = 2000
	got := count(t, client(t), url, n)
	if got["canary"]+got["stable"] != n {
		t.Fatalf("answers from unknown backends: %v", got)
	}
	// 30% of 2000 is 600; the standard deviation is about 20.
	if c := got["canary"]; c < 500 || c > 700 {
		t.Errorf("canary served %d of %d, want about 600", c, n)
	}
}

func TestProxy_NoBackends(t *testing.T) {
	p, url := newProxy(t, Config{})
	c := client(t)
	code, body, h := get(t, c, http.MethodGet, url, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `no ready instance of app "shop"`) || h.Get("Retry-After") == "" {
		t.Errorf("empty table: got %d %q", code, body)
	}
	mustUpdate(t, p, Table{Split: weights("canary", 50, "stable", 50)})
	if code, body, _ := get(t, c, http.MethodGet, url, nil); code != http.StatusServiceUnavailable {
		t.Errorf("no backends: got %d %q", code, body)
	}
}

func TestProxy_FallsBackWhenRevisionHasNoBackend(t *testing.T) {
	p, url := newProxy(t, Config{})
	c := client(t)
	b := twoRevisions(t)

	t.Run("canary without instances", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("canary", 50, "stable", 50), Backends: map[string][]Backend{"stable": b["stable"]}})
		if got := count(t, c, url, 50); got["stable"] != 50 {
			t.Errorf("got %v, want every request on stable", got)
		}
	})
	t.Run("stable without instances wraps to the canary", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("canary", 10, "stable", 90), Backends: map[string][]Backend{"canary": b["canary"]}})
		if got := count(t, c, url, 50); got["canary"] != 50 {
			t.Errorf("got %v, want every request on canary", got)
		}
	})
	t.Run("no weighted revision with instances falls back to another revision of the table", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": nil, "canary": b["canary"]}})
		if got := count(t, c, url, 50); got["canary"] != 50 {
			t.Errorf("got %v, want every request on canary, the only revision with an instance", got)
		}
	})
	t.Run("a weighted backend that refuses the connection retries on another revision of the table", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{
			"stable": {{ID: "dead", Addr: deadAddr(t)}}, "canary": b["canary"],
		}})
		if got := count(t, c, url, 20); got["canary"] != 20 {
			t.Errorf("got %v, want every request answered by canary", got)
		}
	})
	t.Run("routed revision without instances falls back to the split", func(t *testing.T) {
		mustUpdate(t, p, Table{
			Split: slipway.Split{Weights: weights("canary", 0, "stable", 100).Weights, Routes: []slipway.Route{
				{Name: "beta", Revision: "canary", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}},
			}},
			Backends: map[string][]Backend{"stable": b["stable"], "canary": nil},
		})
		if got := count(t, c, url, 20, "X-Beta", "1"); got["stable"] != 20 {
			t.Errorf("got %v, want every request on stable", got)
		}
	})
}

func TestProxy_Routes(t *testing.T) {
	p, url := newProxy(t, Config{})
	mustUpdate(t, p, Table{
		Split: slipway.Split{
			Weights: weights("canary", 0, "stable", 100).Weights,
			Routes: []slipway.Route{
				{Name: "exact", Revision: "canary", Match: []slipway.HeaderMatch{{Header: "x-beta", Exact: "yes"}}},
				{Name: "prefix", Revision: "canary", Match: []slipway.HeaderMatch{{Header: "X-Tenant", Prefix: "acme-"}}},
				{Name: "regex", Revision: "canary", Match: []slipway.HeaderMatch{{Header: "User-Agent", Regex: `^tester/\d+$`}}},
				{Name: "cookie", Revision: "canary", Match: []slipway.HeaderMatch{{Cookie: "beta", Exact: "on"}}},
				{Name: "both", Revision: "canary", Match: []slipway.HeaderMatch{
					{Header: "X-A", Exact: "1"}, {Header: "X-B", Exact: "2"},
				}},
			},
		},
		Backends: twoRevisions(t),
	})
	c := client(t)
	tests := []struct {
		name    string
		headers []string
		want    string
	}{
		{"no header", nil, "stable"},
		{"exact", []string{"X-Beta", "yes"}, "canary"},
		{"exact mismatch", []string{"X-Beta", "yes!"}, "stable"},
		{"any value of a repeated header", []string{"X-Beta", "no", "X-Beta", "yes"}, "canary"},
		{"prefix", []string{"X-Tenant", "acme-eu"}, "canary"},
		{"prefix mismatch", []string{"X-Tenant", "other"}, "stable"},
		{"regex", []string{"User-Agent", "tester/42"}, "canary"},
		{"regex mismatch", []string{"User-Agent", "tester/x"}, "stable"},
		{"cookie", []string{"Cookie", "a=1; beta=on"}, "canary"},
		{"cookie mismatch", []string{"Cookie", "beta=off"}, "stable"},
		{"all entries must match", []string{"X-A", "1"}, "stable"},
		{"all entries match", []string{"X-A", "1", "X-B", "2"}, "canary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := count(t, c, url, 5, tt.headers...); got[tt.want] != 5 {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
}

func TestProxy_Sticky(t *testing.T) {
	t.Run("cookie set by the proxy", func(t *testing.T) {
		p, url := newProxy(t, Config{App: "web shop", Stickiness: &slipway.Stickiness{Enabled: true}})
		mustUpdate(t, p, Table{Split: weights("canary", 50, "stable", 50), Backends: twoRevisions(t)})
		c := client(t)
		_, _, h := get(t, c, http.MethodGet, url, nil)
		sc := h.Values("Set-Cookie")
		if len(sc) != 1 {
			t.Fatalf("Set-Cookie: %q", sc)
		}
		for _, want := range []string{"slipway_web_shop=", "Path=/", "HttpOnly", "SameSite=Lax", "Max-Age="} {
			if !strings.Contains(sc[0], want) {
				t.Errorf("Set-Cookie %q lacks %q", sc[0], want)
			}
		}
		// Each client with a jar stays on one revision; over many clients both are used.
		seen := map[string]int{}
		for range 30 {
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			cj := client(t)
			cj.Jar = jar
			got := count(t, cj, url, 8)
			if len(got) != 1 {
				t.Fatalf("one client was split between revisions: %v", got)
			}
			for rev := range got {
				seen[rev]++
			}
			// The cookie is set once only.
			if _, _, h := get(t, cj, http.MethodGet, url, nil); h.Get("Set-Cookie") != "" {
				t.Fatalf("cookie set again: %q", h.Get("Set-Cookie"))
			}
		}
		if seen["canary"] == 0 || seen["stable"] == 0 {
			t.Errorf("30 clients all on one revision: %v", seen)
		}
	})

	t.Run("header named by the app", func(t *testing.T) {
		p, url := newProxy(t, Config{Stickiness: &slipway.Stickiness{Enabled: true, Header: "x-user"}})
		mustUpdate(t, p, Table{Split: weights("canary", 50, "stable", 50), Backends: twoRevisions(t)})
		c := client(t)
		seen := map[string]int{}
		for i := range 40 {
			user := "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			got := count(t, c, url, 4, "X-User", user)
			if len(got) != 1 {
				t.Fatalf("user %s split between revisions: %v", user, got)
			}
			for rev := range got {
				if want := map[bool]string{true: "canary", false: "stable"}[bucketOf(user) < 50]; rev != want {
					t.Errorf("user %s on %s, want %s", user, rev, want)
				}
				seen[rev]++
			}
		}
		if seen["canary"] == 0 || seen["stable"] == 0 {
			t.Errorf("40 users all on one revision: %v", seen)
		}
		if _, _, h := get(t, c, http.MethodGet, url, nil, "X-User", "u"); h.Get("Set-Cookie") != "" {
			t.Errorf("a cookie was set although the app's header named the user")
		}
	})

	t.Run("cookie named by the app", func(t *testing.T) {
		p, url := newProxy(t, Config{Stickiness: &slipway.Stickiness{Enabled: true, Cookie: "sid"}})
		mustUpdate(t, p, Table{Split: weights("canary", 50, "stable", 50), Backends: twoRevisions(t)})
		c := client(t)
		for _, sid := range []string{"alice", "bob", "carol", "dave"} {
			want := map[bool]string{true: "canary", false: "stable"}[bucketOf(sid) < 50]
			if got := count(t, c, url, 4, "Cookie", "x=1; sid="+sid); got[want] != 4 {
				t.Errorf("sid %s: got %v, want %s", sid, got, want)
			}
		}
	})
}

func TestProxy_LeastOutstanding(t *testing.T) {
	p, url := newProxy(t, Config{})
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the gate opens
	slow, slowAddr := startGate(t, "slow")
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {
		{ID: "fast", Addr: startBackend(t, named("fast"))},
		{ID: "slow", Addr: slowAddr},
	}}})
	c := client(t)
	// Send requests until one is held by the slow backend.
	done := make(chan string, 64)
	for p.InFlight("slow") == 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Get(url)
			if err != nil {
				done <- err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			done <- string(b)
		}()
		slipwaytest.Eventually(t, 5*time.Second, "a request to finish or be held", func() bool { return len(done) > 0 || p.InFlight("slow") > 0 })
		for len(done) > 0 {
			if got := <-done; got != "fast" {
				t.Fatalf("unexpected answer %q", got)
			}
		}
	}
	// With one request outstanding on slow and none on fast, every request goes to fast.
	if got := count(t, c, url, 30); got["fast"] != 30 {
		t.Errorf("got %v, want all 30 on the backend with no outstanding request", got)
	}
	slow.open()
	wg.Wait()
	if got := <-done; got != "slow" {
		t.Errorf("held request answered %q", got)
	}
}

func TestProxy_RetriesOnDeadBackend(t *testing.T) {
	p, url := newProxy(t, Config{})
	c := client(t)

	t.Run("same revision", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {
			{ID: "dead", Addr: deadAddr(t)},
			{ID: "live", Addr: startBackend(t, named("live"))},
		}}})
		if got := count(t, c, url, 60); got["live"] != 60 {
			t.Errorf("got %v, want every request answered by live", got)
		}
	})
	t.Run("other revision when the revision has no other backend", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("canary", 50, "stable", 50), Backends: map[string][]Backend{
			"canary": {{ID: "dead", Addr: deadAddr(t)}},
			"stable": {{ID: "live", Addr: startBackend(t, named("live"))}},
		}})
		if got := count(t, c, url, 60); got["live"] != 60 {
			t.Errorf("got %v, want every request answered by live", got)
		}
		slipwaytest.Eventually(t, 5*time.Second, "no request in flight", func() bool { return p.InFlight("dead")+p.InFlight("live") == 0 })
	})
	t.Run("only backend dead", func(t *testing.T) {
		mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "dead", Addr: deadAddr(t)}}}})
		if code, body, _ := get(t, c, http.MethodGet, url, nil); code != http.StatusBadGateway {
			t.Errorf("got %d %q, want 502", code, body)
		}
	})
}

func TestProxy_NoRetryForBodyThatCannotBeReplayed(t *testing.T) {
	p, url := newProxy(t, Config{})
	var liveHits atomic.Int64
	live := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		liveHits.Add(1)
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {
		{ID: "dead", Addr: deadAddr(t)},
		{ID: "live", Addr: startBackend(t, live)},
	}}})
	c := client(t)
	codes := map[int]int{}
	for range 40 {
		// An io.Reader the client cannot rewind: the proxy sees a streamed body.
		code, body, _ := get(t, c, http.MethodPost, url, io.MultiReader(strings.NewReader("payload")))
		codes[code]++
		if code == http.StatusOK && body != "payload" {
			t.Errorf("body %q", body)
		}
	}
	if codes[http.StatusBadGateway] == 0 || codes[http.StatusOK] == 0 || codes[http.StatusOK]+codes[http.StatusBadGateway] != 40 {
		t.Errorf("statuses %v: want some 502 (dead backend, no retry) and some 200", codes)
	}
	if int(liveHits.Load()) != codes[http.StatusOK] {
		t.Errorf("live backend saw %d requests but %d succeeded: a body was retried", liveHits.Load(), codes[http.StatusOK])
	}
}

func TestProxy_RetryReplaysGetBody(t *testing.T) {
	p := New(Config{App: "shop"})
	t.Cleanup(p.CloseIdleConnections)
	live := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {
		{ID: "dead", Addr: deadAddr(t)},
		{ID: "live", Addr: startBackend(t, live)},
	}}})
	for range 20 {
		// http.NewRequest sets GetBody for a strings.Reader.
		req, err := http.NewRequest(http.MethodPut, "http://shop.test/x", strings.NewReader("again"))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.String() != "again" {
			t.Fatalf("got %d %q", rec.Code, rec.Body.String())
		}
	}
}

// closingBackend accepts connections and closes them at once, before any response.
func closingBackend(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	tb.Cleanup(func() { _ = l.Close(); <-done })
	return l.Addr().String()
}

func TestProxy_RetriesIdempotentRequestOnConnectionClosedBeforeResponse(t *testing.T) {
	p, url := newProxy(t, Config{})
	var posts atomic.Int64
	live := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		_, _ = io.WriteString(w, "live")
	})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {
		{ID: "closing", Addr: closingBackend(t)},
		{ID: "live", Addr: startBackend(t, live)},
	}}})
	c := client(t)
	if got := count(t, c, url, 40); got["live"] != 40 {
		t.Errorf("GET: got %v, want every request answered by live", got)
	}
	// A bodyless POST may have reached the closing backend: it is not retried.
	codes := map[int]int{}
	for range 40 {
		code, _, _ := get(t, c, http.MethodPost, url, nil)
		codes[code]++
	}
	if codes[http.StatusBadGateway] == 0 || int(posts.Load()) != codes[http.StatusOK] {
		t.Errorf("POST statuses %v, live saw %d: want some 502 and no retry", codes, posts.Load())
	}
}
