package proxy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"slipway.dev/slipway"
)

// TestMain runs the suite twice, the proxies served by the fast path (Serve) and then by
// net/http (ServeHTTP), and checks that no goroutine is left behind.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.fuzz").Value.String() == "" && flag.Lookup("test.bench").Value.String() == "" {
		serveMode = "net/http"
		fmt.Println("--- again, the proxies served by net/http")
		code = m.Run()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestProxy_UpdateValidation(t *testing.T) {
	ok := []Backend{{ID: "a1", Addr: "127.0.0.1:1"}}
	tests := []struct {
		name  string
		table Table
		want  string // substring of one detail
	}{
		{"weights not summing to 100", Table{Split: weights("a", 60, "b", 30)}, "sum to 90"},
		{"negative weight", Table{Split: weights("a", 110, "b", -10)}, "not between 0 and 100"},
		{"duplicate revision", Table{Split: weights("a", 50, "a", 50)}, "listed twice"},
		{"empty revision", Table{Split: weights("", 100)}, "revision is empty"},
		{"route to unknown revision", Table{
			Split: slipway.Split{Weights: weights("a", 100).Weights, Routes: []slipway.Route{
				{Name: "beta", Revision: "zzz", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}},
			}},
			Backends: map[string][]Backend{"a": ok},
		}, `revision "zzz" is neither`},
		{"route without match", Table{
			Split: slipway.Split{Weights: weights("a", 100).Weights, Routes: []slipway.Route{{Name: "all", Revision: "a"}}},
		}, "no match"},
		{"match with two operators", Table{
			Split: slipway.Split{Weights: weights("a", 100).Weights, Routes: []slipway.Route{
				{Revision: "a", Match: []slipway.HeaderMatch{{Header: "X", Exact: "1", Prefix: "1"}}},
			}},
		}, "exactly one of exact, prefix or regex"},
		{"match with header and cookie", Table{
			Split: slipway.Split{Weights: weights("a", 100).Weights, Routes: []slipway.Route{
				{Revision: "a", Match: []slipway.HeaderMatch{{Header: "X", Cookie: "c", Exact: "1"}}},
			}},
		}, "exactly one of header or cookie"},
		{"bad regex", Table{
			Split: slipway.Split{Weights: weights("a", 100).Weights, Routes: []slipway.Route{
				{Revision: "a", Match: []slipway.HeaderMatch{{Header: "X", Regex: "("}}},
			}},
		}, "regex"},
		{"duplicate backend id", Table{
			Split:    weights("a", 50, "b", 50),
			Backends: map[string][]Backend{"a": ok, "b": ok},
		}, `id "a1" is also used`},
		{"bad address", Table{
			Split:    weights("a", 100),
			Backends: map[string][]Backend{"a": {{ID: "a1", Addr: "localhost"}}},
		}, "not host:port"},
		{"backend under the wrong revision", Table{
			Split:    weights("a", 100),
			Backends: map[string][]Backend{"a": {{ID: "a1", Revision: "b", Addr: "127.0.0.1:1"}}},
		}, `says revision "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Config{App: "shop"})
			before := p.Current()
			err := p.Update(tt.table)
			if slipway.ErrorCode(err) != slipway.EINVALID {
				t.Fatalf("Update: got %v, want EINVALID", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if got := p.Current(); len(got.Split.Weights) != len(before.Split.Weights) {
				t.Errorf("a rejected table took effect: %+v", got)
			}
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		err := New(Config{App: "shop"}).Update(Table{Split: weights("a", -5, "a", 50)})
		var e *slipway.Error
		if !errors.As(err, &e) || len(e.Details) < 3 {
			t.Fatalf("want at least 3 details, got %v", err)
		}
	})

	t.Run("valid tables", func(t *testing.T) {
		p := New(Config{App: "shop"})
		valid := []Table{
			{},
			{Split: weights("a", 100)},
			{Split: weights("b", 0, "a", 100), Backends: map[string][]Backend{"a": ok}},
			{Split: slipway.Split{Weights: weights("a", 100).Weights, Routes: []slipway.Route{
				{Name: "beta", Revision: "b", Match: []slipway.HeaderMatch{{Cookie: "beta", Regex: "^on$"}}},
			}}, Backends: map[string][]Backend{"b": {{ID: "b1", Addr: "127.0.0.1:2"}}}},
		}
		for i, tab := range valid {
			if err := p.Update(tab); err != nil {
				t.Errorf("table %d: %v", i, err)
			}
		}
	})
}

func TestProxy_CurrentIsACopy(t *testing.T) {
	p := New(Config{App: "shop"})
	in := Table{
		Split:    weights("b", 20, "a", 80),
		Backends: map[string][]Backend{"a": {{ID: "a1", Addr: "127.0.0.1:1"}}},
		Versions: map[string]string{"a": "v1"},
		Preview:  "b",
	}
	mustUpdate(t, p, in)
	in.Split.Weights[0].Weight = 99
	in.Backends["a"][0].Addr = "changed:1"
	got := p.Current()
	if got.Split.Weights[0].Weight != 20 || got.Backends["a"][0].Addr != "127.0.0.1:1" || got.Preview != "b" || got.Versions["a"] != "v1" {
		t.Fatalf("Current changed with the caller's table: %+v", got)
	}
	got.Split.Weights[0].Weight = 1
	if p.Current().Split.Weights[0].Weight != 20 {
		t.Fatal("Current returned the proxy's own table")
	}
}

// The sticky property: with the new revision first, raising its weight only moves users
// onto it; and buckets spread evenly.
func TestBucket_RaisingWeightOnlyMovesKeysOntoCanary(t *testing.T) {
	const keys = 10000
	var prev []string
	for _, w := range []int{0, 10, 20, 50, 100} {
		c := compile(Table{
			Split: weights("canary", w, "stable", 100-w),
			Backends: map[string][]Backend{
				"canary": {{ID: "c1", Revision: "canary", Addr: "127.0.0.1:1"}},
				"stable": {{ID: "s1", Revision: "stable", Addr: "127.0.0.1:2"}},
			},
		}, func(b Backend) *backend { return &backend{id: b.ID, revision: b.Revision} }, nil)
		cur := make([]string, keys)
		onCanary := 0
		for i := range keys {
			cur[i] = c.split(bucketOf(fmt.Sprintf("user-%d", i))).name
			if cur[i] == "canary" {
				onCanary++
			}
			if prev != nil && prev[i] == "canary" && cur[i] != "canary" {
				t.Fatalf("weight %d: key user-%d moved off the canary", w, i)
			}
		}
		if want := keys * w / 100; abs(onCanary-want) > keys/50 {
			t.Errorf("weight %d: %d of %d keys on the canary, want about %d", w, onCanary, keys, want)
		}
		prev = cur
	}
}

func TestBucket_StableValues(t *testing.T) {
	// These values must never change: users would move between revisions on upgrade. They
	// were computed independently (FNV-1a 32, fmix32, (h*100)>>32).
	want := map[string]uint32{"alice": 91, "bob": 97, "user-1": 46, "user-2": 19}
	for key, w := range want {
		if got := bucketOf(key); got != w {
			t.Errorf("bucketOf(%q) = %d, want %d", key, got, w)
		}
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		header []string
		name   string
		want   string
		ok     bool
	}{
		{[]string{"a=1; b=2"}, "b", "2", true},
		{[]string{"a=1;b=2"}, "b", "2", true},
		{[]string{"a=1", "b=\"q\""}, "b", "q", true},
		{[]string{"ab=1"}, "b", "", false},
		{nil, "b", "", false},
		{[]string{"b="}, "b", "", true},
	}
	for _, tt := range tests {
		got, ok := cookieValue(map[string][]string{"Cookie": tt.header}, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("cookieValue(%q, %q) = %q, %v; want %q, %v", tt.header, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
