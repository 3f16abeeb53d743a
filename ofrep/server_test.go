package ofrep_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/ofrep"
)

const setMeta = `"flagSetId":"shop","team":"web","version":3`

func TestSingle(t *testing.T) {
	srv, _ := newServer(t, ofrep.Config{})
	meta := `"metadata":{` + setMeta + `}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		want   string
	}{
		{"static number", "POST", "/ofrep/v1/evaluate/flags/limit", `{"context":{}}`, 200,
			`{"key":"limit","value":100,"variant":"high","reason":"STATIC",` + meta + `}`},
		{"static float", "POST", "/ofrep/v1/evaluate/flags/ratio", `{"context":{"targetingKey":"u"}}`, 200,
			`{"key":"ratio","value":0.5,"variant":"half","reason":"STATIC",` + meta + `}`},
		{"object with sorted keys", "POST", "/ofrep/v1/evaluate/flags/theme", `{}`, 200,
			`{"key":"theme","value":{"bg":"#000","contrast":21,"fg":"#fff"},"variant":"dark","reason":"STATIC",` + meta + `}`},
		{"escaped string", "POST", "/ofrep/v1/evaluate/flags/greeting", ``, 200,
			`{"key":"greeting","value":"Hello, \"world\" <&>","variant":"hello","reason":"STATIC",` + meta + `}`},
		{"targeting match, flag metadata over set metadata", "POST", "/ofrep/v1/evaluate/flags/banner",
			`{"context":{"targetingKey":"u1","email":"ann@example.com"}}`, 200,
			`{"key":"banner","value":true,"variant":"on","reason":"TARGETING_MATCH","metadata":{"experiment":true,"flagSetId":"shop","team":"growth","version":3}}`},
		{"targeting other branch", "POST", "/ofrep/v1/evaluate/flags/banner",
			`{"context":{"email":"bob@other.org"}}`, 200,
			`{"key":"banner","value":false,"variant":"off","reason":"TARGETING_MATCH","metadata":{"experiment":true,"flagSetId":"shop","team":"growth","version":3}}`},
		{"fractional (flagd vector: rachel -> blue)", "POST", "/ofrep/v1/evaluate/flags/headerColor",
			`{"context":{"targetingKey":"x","email":"rachel@faas.com"}}`, 200,
			`{"key":"headerColor","value":"blue","variant":"blue","reason":"TARGETING_MATCH",` + meta + `}`},
		{"disabled: no value", "POST", "/ofrep/v1/evaluate/flags/retired", `{"context":{}}`, 200,
			`{"key":"retired","reason":"DISABLED",` + meta + `}`},
		{"no default variant: code default, no value", "POST", "/ofrep/v1/evaluate/flags/unset", `{"context":{}}`, 200,
			`{"key":"unset","reason":"DEFAULT",` + meta + `}`},
		{"targeting null without default: code default", "POST", "/ofrep/v1/evaluate/flags/pro-only", `{"context":{"plan":"free"}}`, 200,
			`{"key":"pro-only","reason":"DEFAULT",` + meta + `}`},
		{"targeting names no variant: GENERAL", "POST", "/ofrep/v1/evaluate/flags/broken", `{"context":{}}`, 400,
			`{"key":"broken","errorCode":"GENERAL","errorDetails":"targeting returned \"missing\", which names no variant",` + meta + `}`},
		{"not found", "POST", "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`, 404,
			`{"key":"nope","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag nope not found",` + meta + `}`},
		{"trailing slash", "POST", "/ofrep/v1/evaluate/flags/limit/", `{"context":{}}`, 200,
			`{"key":"limit","value":100,"variant":"high","reason":"STATIC",` + meta + `}`},
		{"url-decoded key", "POST", "/ofrep/v1/evaluate/flags/a%3Ab%2Ec", `{"context":{}}`, 200,
			`{"key":"a:b.c","value":true,"variant":"on","reason":"STATIC",` + meta + `}`},
		{"null body", "POST", "/ofrep/v1/evaluate/flags/limit", `null`, 200,
			`{"key":"limit","value":100,"variant":"high","reason":"STATIC",` + meta + `}`},
		{"null context", "POST", "/ofrep/v1/evaluate/flags/limit", `{"context":null,"other":[1,{"x":"y"}]}`, 200,
			`{"key":"limit","value":100,"variant":"high","reason":"STATIC",` + meta + `}`},
		{"malformed JSON", "POST", "/ofrep/v1/evaluate/flags/limit", `{"context":`, 400,
			`{"key":"limit","errorCode":"INVALID_CONTEXT","errorDetails":"the request body is not valid JSON: unexpected end of input at offset 11"}`},
		{"context not an object", "POST", "/ofrep/v1/evaluate/flags/limit", `{"context":[1]}`, 400,
			`{"key":"limit","errorCode":"INVALID_CONTEXT","errorDetails":"the request body is not valid JSON: context must be a JSON object at offset 11"}`},
		{"body not an object", "POST", "/ofrep/v1/evaluate/flags/limit", `"x"`, 400,
			`{"key":"limit","errorCode":"INVALID_CONTEXT","errorDetails":"the request body is not valid JSON: the request body must be a JSON object at offset 0"}`},
		{"GET not allowed", "GET", "/ofrep/v1/evaluate/flags/limit", ``, 405,
			`{"errorDetails":"method GET is not allowed here; use POST"}`},
		{"unknown endpoint", "POST", "/ofrep/v1/configuration", `{}`, 404,
			`{"errorDetails":"no OFREP endpoint at /ofrep/v1/configuration"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, tt.method, tt.path, tt.body, "Content-Type", "application/json")
			if r.status != tt.status {
				t.Errorf("status %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			if r.body != tt.want {
				t.Errorf("body\n got %s\nwant %s", r.body, tt.want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !json.Valid([]byte(r.body)) {
				t.Errorf("body is not valid JSON: %s", r.body)
			}
			if tt.status == 405 && r.header.Get("Allow") != "POST, OPTIONS" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
}

func TestBulk(t *testing.T) {
	srv, cur := newServer(t, ofrep.Config{})
	body := `{"context":{"targetingKey":"u1","email":"ann@example.com","plan":"pro"}}`
	r := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", body)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got struct {
		Flags []struct {
			Key       string         `json:"key"`
			Value     any            `json:"value"`
			Variant   string         `json:"variant"`
			Reason    string         `json:"reason"`
			ErrorCode string         `json:"errorCode"`
			Metadata  map[string]any `json:"metadata"`
		} `json:"flags"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	keys := []string{}
	byKey := map[string]int{}
	for i, f := range got.Flags {
		keys = append(keys, f.Key)
		byKey[f.Key] = i
	}
	if strings.Join(keys, ",") != "a:b.c,banner,broken,greeting,headerColor,limit,pro-only,ratio,retired,theme,unset" {
		t.Errorf("keys %v", keys)
	}
	if f := got.Flags[byKey["banner"]]; f.Value != true || f.Reason != "TARGETING_MATCH" || f.Variant != "on" {
		t.Errorf("banner %+v", f)
	}
	if f := got.Flags[byKey["pro-only"]]; f.Value != "pro" {
		t.Errorf("pro-only %+v", f)
	}
	if f := got.Flags[byKey["broken"]]; f.ErrorCode != "GENERAL" || f.Reason != "" {
		t.Errorf("broken should fail inline: %+v", f)
	}
	if f := got.Flags[byKey["retired"]]; f.Reason != "DISABLED" || f.Value != nil {
		t.Errorf("retired %+v", f)
	}
	if got.Metadata["flagSetId"] != "shop" || got.Metadata["version"] != 3.0 {
		t.Errorf("set metadata %v", got.Metadata)
	}
	if want := `,"eventStreams":[{"type":"sse","endpoint":{"requestUri":"/ofrep/v1/events"}}]}`; !strings.HasSuffix(r.body, want) {
		t.Errorf("eventStreams: %s", r.body)
	}
	etag := r.header.Get("ETag")
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || strings.HasPrefix(etag, "W/") {
		t.Fatalf("ETag %q is not a quoted strong tag", etag)
	}

	t.Run("trailing slash and query hints", func(t *testing.T) {
		r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags/?flagConfigEtag=%22x%22&flagConfigLastModified=1771622898", body)
		if r2.status != 200 || r2.body != r.body || r2.header.Get("ETag") != etag {
			t.Errorf("status %d, ETag %q, same body %v", r2.status, r2.header.Get("ETag"), r2.body == r.body)
		}
	})
	t.Run("same context in another key order and spacing has the same ETag", func(t *testing.T) {
		r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{ "context" : {"plan":"pro", "email":"ann@example.com","targetingKey":"u1"} }`)
		if r2.header.Get("ETag") != etag {
			t.Errorf("ETag %q, want %q", r2.header.Get("ETag"), etag)
		}
	})
	bare := strings.Trim(etag, `"`)
	for _, inm := range []string{etag, bare, "W/" + etag, `"other", ` + etag, "*"} {
		t.Run("If-None-Match "+inm, func(t *testing.T) {
			r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", body, "If-None-Match", inm)
			if r2.status != http.StatusNotModified || r2.body != "" {
				t.Errorf("status %d body %q, want 304 without body", r2.status, r2.body)
			}
			if r2.header.Get("ETag") != etag {
				t.Errorf("304 ETag %q", r2.header.Get("ETag"))
			}
		})
	}
	t.Run("changed context attribute (same targetingKey) gets a new ETag and 200", func(t *testing.T) {
		r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1","email":"ann@other.org","plan":"pro"}}`, "If-None-Match", etag)
		if r2.status != 200 || r2.header.Get("ETag") == etag {
			t.Errorf("status %d ETag %q", r2.status, r2.header.Get("ETag"))
		}
		if !strings.Contains(r2.body, `{"key":"banner","value":false`) {
			t.Errorf("banner not re-evaluated: %s", r2.body)
		}
	})
	t.Run("new flag revision gets a new ETag and 200", func(t *testing.T) {
		cur.Swap(compile(t, "testdata/flags.json", 2))
		r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", body, "If-None-Match", etag)
		if r2.status != 200 || r2.header.Get("ETag") == etag || r2.header.Get("ETag") == "" {
			t.Errorf("status %d ETag %q", r2.status, r2.header.Get("ETag"))
		}
	})
	t.Run("same revision number but another Set still changes the ETag", func(t *testing.T) {
		before := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", body).header.Get("ETag")
		cur.Swap(compile(t, "testdata/flags.json", 2))
		r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", body, "If-None-Match", before)
		if r2.status != 200 {
			t.Errorf("status %d", r2.status)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		r2 := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"a":tru}}`)
		want := `{"errorCode":"INVALID_CONTEXT","errorDetails":"the request body is not valid JSON: invalid literal at offset 16"}`
		if r2.status != 400 || r2.body != want || r2.header.Get("Content-Type") != "application/json" {
			t.Errorf("status %d body %s", r2.status, r2.body)
		}
	})
	t.Run("GET", func(t *testing.T) {
		r2 := do(t, srv, "GET", "/ofrep/v1/evaluate/flags", "")
		if r2.status != 405 || r2.header.Get("Allow") != "POST, OPTIONS" {
			t.Errorf("status %d Allow %q", r2.status, r2.header.Get("Allow"))
		}
	})
}

func TestNoFlags(t *testing.T) {
	srv := ofrep.New(ofrep.Config{})
	if r := do(t, srv, "POST", "/ofrep/v1/evaluate/flags/x", "{}"); r.status != 404 || !strings.Contains(r.body, `"FLAG_NOT_FOUND"`) {
		t.Errorf("single: %d %s", r.status, r.body)
	}
	r := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", "{}")
	if r.status != 200 || !strings.HasPrefix(r.body, `{"flags":[],"eventStreams":`) || r.header.Get("ETag") == "" {
		t.Errorf("bulk: %d %s", r.status, r.body)
	}
}

func TestCORS(t *testing.T) {
	srv, _ := newServer(t, ofrep.Config{APIKeys: []string{"k"}})
	r := do(t, srv, "OPTIONS", "/ofrep/v1/evaluate/flags", "",
		"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type,if-none-match,x-api-key")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight status %d (preflights carry no credentials)", r.status)
	}
	allow := r.header.Get("Access-Control-Allow-Headers")
	for _, h := range []string{"Content-Type", "If-None-Match", "Authorization", "X-API-Key"} {
		if !strings.Contains(allow, h) {
			t.Errorf("Allow-Headers %q lacks %s", allow, h)
		}
	}
	if !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight headers %v", r.header)
	}
	r = do(t, srv, "POST", "/ofrep/v1/evaluate/flags", "{}", "Origin", "https://app.example.com", "X-API-Key", "k")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("status %d headers %v", r.status, r.header)
	}
}

func TestAuth(t *testing.T) {
	srv, _ := newServer(t, ofrep.Config{APIKeys: []string{"first-key", "second-key"}})
	const single = "/ofrep/v1/evaluate/flags/limit"
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"none", nil, 401},
		{"wrong api key", []string{"X-API-Key", "nope"}, 401},
		{"wrong bearer", []string{"Authorization", "Bearer nope"}, 401},
		{"basic scheme", []string{"Authorization", "Basic Zmlyc3Qta2V5"}, 401},
		{"api key", []string{"X-API-Key", "second-key"}, 200},
		{"bearer", []string{"Authorization", "Bearer first-key"}, 200},
		{"bearer, any case", []string{"Authorization", "bearer first-key"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, "POST", single, "{}", tt.header...)
			if r.status != tt.status {
				t.Errorf("status %d, want %d", r.status, tt.status)
			}
		})
	}
	t.Run("bulk hands out an event-stream URL that authenticates the stream", func(t *testing.T) {
		r := do(t, srv, "POST", "/ofrep/v1/evaluate/flags", "{}", "X-API-Key", "first-key")
		var got struct {
			EventStreams []struct {
				Endpoint struct {
					RequestURI string `json:"requestUri"`
				} `json:"endpoint"`
			} `json:"eventStreams"`
		}
		if err := json.Unmarshal([]byte(r.body), &got); err != nil || len(got.EventStreams) != 1 {
			t.Fatalf("%v: %s", err, r.body)
		}
		uri := got.EventStreams[0].Endpoint.RequestURI
		if !strings.HasPrefix(uri, "/ofrep/v1/events?token=") || strings.Contains(uri, "first-key") {
			t.Fatalf("requestUri %q", uri)
		}
		if r := do(t, srv, "GET", "/ofrep/v1/events?token=forged", ""); r.status != 401 {
			t.Errorf("forged token: %d", r.status)
		}
		if r := do(t, srv, "GET", "/ofrep/v1/events", ""); r.status != 401 {
			t.Errorf("no token: %d", r.status)
		}
		srv.CloseStreams() // so the authenticated stream below returns at once
		if r := do(t, srv, "GET", uri, ""); r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("token: %d %v", r.status, r.header)
		}
	})
}

func TestRateLimit(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	srv, _ := newServer(t, ofrep.Config{RateLimit: 2, Burst: 3, Now: clk.now})
	post := func(remote string) response {
		req := "/ofrep/v1/evaluate/flags/limit"
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = remote
			srv.ServeHTTP(w, r)
		})
		return do(t, h, "POST", req, "{}")
	}
	for i := range 3 {
		if r := post("10.0.0.1:1234"); r.status != 200 {
			t.Fatalf("request %d within burst: %d", i, r.status)
		}
	}
	r := post("10.0.0.1:5678")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.body != "" {
		t.Fatalf("over the limit: %d Retry-After %q body %q", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := post("[::1]:80"); r.status != 200 {
		t.Errorf("another client is limited on its own: %d", r.status)
	}
	clk.t = clk.t.Add(500 * time.Millisecond) // one token at 2/s
	if r := post("10.0.0.1:1"); r.status != 200 {
		t.Errorf("after refill: %d", r.status)
	}
	if r := post("10.0.0.1:1"); r.status != 429 {
		t.Errorf("bucket empty again: %d", r.status)
	}
	slow, _ := newServer(t, ofrep.Config{RateLimit: 0.1, Burst: 1, Now: clk.now})
	do(t, slow, "POST", "/ofrep/v1/evaluate/flags/limit", "{}")
	if r := do(t, slow, "POST", "/ofrep/v1/evaluate/flags/limit", "{}"); r.status != 429 || r.header.Get("Retry-After") != "10" {
		t.Errorf("0.1/s: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestBodyLimit(t *testing.T) {
	srv, _ := newServer(t, ofrep.Config{MaxBody: 100})
	big := `{"context":{"x":"` + strings.Repeat("a", 200) + `"}}`
	r := do(t, srv, "POST", "/ofrep/v1/evaluate/flags/limit", big)
	want := `{"key":"limit","errorCode":"INVALID_CONTEXT","errorDetails":"the request body is larger than the 100-byte limit"}`
	if r.status != http.StatusRequestEntityTooLarge || r.body != want {
		t.Errorf("%d %s", r.status, r.body)
	}
	// Without a Content-Length the limit is enforced while reading.
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.ContentLength = -1
		srv.ServeHTTP(w, req)
	})
	if r := do(t, h, "POST", "/ofrep/v1/evaluate/flags", big); r.status != 413 || !strings.Contains(r.body, "100-byte limit") {
		t.Errorf("chunked: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/ofrep/v1/evaluate/flags/limit", `{"context":{"x":"`+strings.Repeat("a", 60)+`"}}`); r.status != 200 {
		t.Errorf("under the limit: %d %s", r.status, r.body)
	}
	def, _ := newServer(t, ofrep.Config{})
	huge := `{"context":{"x":"` + strings.Repeat("a", ofrep.DefaultMaxBody) + `"}}`
	if r := do(t, def, "POST", "/ofrep/v1/evaluate/flags/limit", huge); r.status != 413 || !strings.Contains(r.body, "65536-byte limit") {
		t.Errorf("default limit: %d %s", r.status, r.body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, _ := newServer(t, ofrep.Config{Metrics: reg})
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags/banner", `{"context":{"email":"a@example.com"}}`)
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags/banner", `{"context":{"email":"a@example.com"}}`)
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags/retired", `{}`)
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags/unknown-key", `{}`)
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{}`)
	// A second server on the same registry shares the counter instead of panicking.
	again, _ := newServer(t, ofrep.Config{Metrics: reg})
	do(t, again, "POST", "/ofrep/v1/evaluate/flags/limit", `{}`)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "slipway_flag_evaluations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["flag"]+"|"+l["variant"]+"|"+l["reason"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"banner|on|TARGETING_MATCH":  2,
		"banner|off|TARGETING_MATCH": 1, // bulk, no email
		"retired||DISABLED":          2, // single + bulk
		"limit|high|STATIC":          2, // bulk + the second server
		"unset||DEFAULT":             1,
		"broken||ERROR":              1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "unknown-key|") {
			t.Errorf("unknown keys must not become label values: %s", k)
		}
	}
}

func TestStatsCountEvaluations(t *testing.T) {
	stats := &flags.Stats{}
	srv, _ := newServer(t, ofrep.Config{Stats: stats})
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags/banner", `{"context":{"email":"a@example.com"}}`)
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags/unknown-key", `{}`)
	do(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{}`)
	got := stats.Drain()
	if got["banner"]["on"] != 1 || got["banner"]["off"] != 1 || got["retired"][""] != 1 {
		t.Fatalf("stats %v", got)
	}
	if _, ok := got["unknown-key"]; ok {
		t.Fatalf("an unknown key was counted: %v", got)
	}
}
