package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

func TestProxy_StreamsServerSentEvents(t *testing.T) {
	p, url := newProxy(t, Config{})
	finish := make(chan struct{})
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-finish:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "s1", Addr: startBackend(t, sse)}}}})

	req, err := http.NewRequestWithContext(ctxTimeout(t, 5*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// The backend is still holding the response open: the first event must arrive now.
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q, %v (buffered by the proxy?)", line, err)
	}
	close(finish)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func TestProxy_StreamsBodyOfKnownLength(t *testing.T) {
	p, url := newProxy(t, Config{})
	finish := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "11")
		_, _ = io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-finish:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "last\n")
	})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "s1", Addr: startBackend(t, slow)}}}})

	req, err := http.NewRequestWithContext(ctxTimeout(t, 5*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ContentLength != 11 {
		t.Fatalf("Content-Length %d, want 11", res.ContentLength)
	}
	br := bufio.NewReader(res.Body)
	// The backend holds the rest of the body back: what it sent so far must arrive now.
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first part: %q, %v (buffered by the proxy?)", line, err)
	}
	close(finish)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "last\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func TestProxy_WebSocketPassesThrough(t *testing.T) {
	p, url := newProxy(t, Config{})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "s1", Addr: startBackend(t, http.HandlerFunc(slipwaytest.WebSocketEcho))}}}})

	conn := slipwaytest.DialWebSocketEcho(t, strings.TrimPrefix(url, "http://"), "shop.test")
	if n := p.InFlight("s1"); n != 1 {
		t.Errorf("open WebSocket counts %d in flight, want 1", n)
	}
	conn.Close()
	slipwaytest.Eventually(t, 5*time.Second, "the WebSocket to leave the in-flight count", func() bool { return p.InFlight("s1") == 0 })
}

func TestProxy_H2C(t *testing.T) {
	h2cClient := func(tb testing.TB) *http.Client {
		var ps http.Protocols
		ps.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &ps}
		tb.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	proto := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Proto) })

	run := func(t *testing.T, cfg Config, backendH2C bool, want string) {
		b := httptest.NewUnstartedServer(proto)
		if backendH2C {
			b.Config.Protocols = Protocols()
		}
		b.Start()
		t.Cleanup(b.Close)
		p, frontURL := newProxy(t, cfg)
		mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "s1", Addr: b.Listener.Addr().String()}}}})

		res, err := h2cClient(t).Get(frontURL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.ProtoMajor != 2 || string(body) != want {
			t.Errorf("client got %s, backend saw %q; want HTTP/2 and %q", res.Proto, body, want)
		}
		// HTTP/1.1 clients are served on the same listener.
		if code, body, _ := get(t, client(t), http.MethodGet, frontURL, nil); code != 200 || body != want {
			t.Errorf("HTTP/1.1 client: %d %q", code, body)
		}
	}
	t.Run("prior knowledge from client, HTTP/1.1 to backend", func(t *testing.T) {
		run(t, Config{}, false, "HTTP/1.1")
	})
	t.Run("h2c end to end", func(t *testing.T) {
		var ps http.Protocols
		ps.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &ps}
		run(t, Config{Transport: tr}, true, "HTTP/2.0")
		tr.CloseIdleConnections()
	})
}

func TestProxy_SetsForwardedHeaders(t *testing.T) {
	p, url := newProxy(t, Config{})
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "for=%s|proto=%s|host=%s|reqhost=%s|path=%s",
			strings.Join(r.Header.Values("X-Forwarded-For"), ","), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.Host, r.URL.RequestURI())
	})
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "s1", Addr: startBackend(t, echo)}}}})
	req, err := http.NewRequest(http.MethodGet, url+"/a/b?q=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "shop.example.com"
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // a client may not spoof its origin
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	want := "for=127.0.0.1|proto=http|host=shop.example.com|reqhost=shop.example.com|path=/a/b?q=1"
	if string(body) != want {
		t.Errorf("backend saw\n %s\nwant\n %s", body, want)
	}
}

func TestProxy_Preview(t *testing.T) {
	p, url := newProxy(t, Config{})
	previewURL := serveProxy(t, p, true)
	c := client(t)
	b := twoRevisions(t)
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: b, Preview: "canary"})
	if got := count(t, c, url, 10); got["stable"] != 10 {
		t.Errorf("main listener: %v", got)
	}
	if got := count(t, c, previewURL, 10); got["canary"] != 10 {
		t.Errorf("preview listener: %v", got)
	}
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: b})
	if code, _, _ := get(t, c, http.MethodGet, previewURL, nil); code != http.StatusServiceUnavailable {
		t.Errorf("preview without a revision: %d, want 503", code)
	}
}

func TestProxy_DrainWaitsForInFlightRequest(t *testing.T) {
	p, url := newProxy(t, Config{})
	slow, slowAddr := startGate(t, "old")
	old := Backend{ID: "old", Addr: slowAddr}
	next := Backend{ID: "new", Addr: startBackend(t, named("new"))}
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {old}}})

	c := client(t)
	answer := make(chan string, 1)
	go func() {
		res, err := c.Get(url)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answer <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	slipwaytest.Eventually(t, 5*time.Second, "the request to reach the old backend", func() bool { return p.InFlight("old") == 1 })

	if err := p.Drain(context.Background(), "old"); slipway.ErrorCode(err) != slipway.ECONFLICT {
		t.Fatalf("Drain of a backend still in the table: %v, want ECONFLICT", err)
	}
	mustUpdate(t, p, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {next}}})

	// ctx ending first: Drain reports it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Drain(ctx, "old"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain with an ended ctx: %v", err)
	}

	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background(), "old") }()
	// New requests go to the new backend while the old one drains.
	if got := count(t, c, url, 5); got["new"] != 5 {
		t.Errorf("during drain: %v", got)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	default:
	}
	if n := p.InFlight("old"); n != 1 {
		t.Fatalf("in flight on old: %d", n)
	}
	slow.open()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the request finished")
	}
	if got := <-answer; got != "200 old" {
		t.Errorf("drained request: %q", got)
	}
	if err := p.Drain(context.Background(), "unknown"); err != nil {
		t.Errorf("Drain of an unknown backend: %v", err)
	}
}

func TestProxy_UpdateUnderLoadFailsNoRequest(t *testing.T) {
	p, url := newProxy(t, Config{Stickiness: &slipway.Stickiness{Enabled: true, Header: "X-User"}})
	var all []Backend
	for i := range 4 {
		all = append(all, Backend{ID: fmt.Sprintf("b%d", i), Addr: startBackend(t, named(fmt.Sprintf("b%d", i)))})
	}
	table := func(i int) Table {
		w := (i * 10) % 110
		return Table{
			Split: weights("canary", w, "stable", 100-w),
			Backends: map[string][]Backend{
				"canary": {all[i%2]},
				"stable": []Backend{all[2+i%2], all[2+(i+1)%2]}[:1+i%2],
			},
		}
	}
	mustUpdate(t, p, table(0))

	var (
		stop   atomic.Bool
		failed atomic.Int64
		served atomic.Int64
		wg     sync.WaitGroup
		first  = make(chan string, 1)
	)
	c := client(t)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					failed.Add(1)
					return
				}
				req.Header.Set("X-User", fmt.Sprintf("user-%d-%d", g, i%50))
				res, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					select {
					case first <- err.Error():
					default:
					}
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
					select {
					case first <- res.Status:
					default:
					}
				}
				served.Add(1)
			}
		}()
	}
	for i := 1; i <= 200; i++ {
		mustUpdate(t, p, table(i))
		start := served.Load()
		slipwaytest.Eventually(t, 5*time.Second, "requests to flow", func() bool { return served.Load() > start })
	}
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during updates; first: %s", n, served.Load(), <-first)
	}
	// The client may read the last response before the handler has returned.
	for _, b := range all {
		slipwaytest.Eventually(t, 5*time.Second, "backend "+b.ID+" to have no request in flight", func() bool { return p.InFlight(b.ID) == 0 })
	}
}
