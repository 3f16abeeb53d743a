package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// serve answers every request with status, content type and body.
func serve(tb testing.TB, status int, contentType, body string) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func metric(w slipway.WebMetric) slipway.Metric {
	return slipway.Metric{Name: "m", Provider: slipway.ProviderSpec{Web: &w}}
}

const doc = `{
  "data": {"rate": 0.012, "ok": true, "name": "api", "big": 12345678901234567890,
           "series": [{"v": 1}, {"v": 2.5}], "my.key": {"x": "dotted"}, "empty": "", "none": null,
           "list": [], "obj": {}},
  "items": [10, 20, 30]
}`

func TestProvider_JSONPath(t *testing.T) {
	srv := serve(t, http.StatusOK, "application/json", doc)
	p := New(nil)
	tests := []struct {
		path    string
		want    any
		noData  bool
		invalid bool
	}{
		{path: "$.data.rate", want: 0.012},
		{path: "data.rate", want: 0.012},
		{path: ".data.rate", want: 0.012},
		{path: "{$.data.rate}", want: 0.012},
		{path: "$.data.ok", want: true},
		{path: "$['data']['name']", want: "api"},
		{path: `$["data"]["my.key"].x`, want: "dotted"},
		{path: "$.data.big", want: 12345678901234567890.0},
		{path: "$.data.series[1].v", want: 2.5},
		{path: "$.items[0]", want: 10.0},
		{path: "$.items[-1]", want: 30.0},
		{path: "$.items", want: []any{10.0, 20.0, 30.0}},
		{path: "$.data.series[0]", want: map[string]any{"v": 1.0}},
		{path: "$.data.missing", noData: true},
		{path: "$.items[3]", noData: true},
		{path: "$.items[-4]", noData: true},
		{path: "$.data.rate.deeper", noData: true},
		{path: "$.items.field", noData: true},
		{path: "$.data[0]", noData: true},
		{path: "$.data.none", noData: true},
		{path: "$.data.empty", noData: true},
		{path: "$.data.list", noData: true},
		{path: "$.data.obj", noData: true},
		{path: "$.data.", invalid: true},
		{path: "$.items[x]", invalid: true},
		{path: "$.items[0", invalid: true},
		{path: "$['data]", invalid: true},
		{path: "$.data*", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := p.Measure(context.Background(), metric(slipway.WebMetric{URL: srv.URL, JSONPath: tt.path}))
			switch {
			case tt.noData:
				if !errors.Is(err, slipway.ErrNoData) {
					t.Fatalf("Measure = %v, %v; want ErrNoData", got, err)
				}
			case tt.invalid:
				if slipway.ErrorCode(err) != slipway.EINVALID {
					t.Fatalf("Measure = %v, %v; want EINVALID", got, err)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(got, tt.want):
				t.Fatalf("Measure = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestProvider_Bodies(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		path   string
		want   any
		noData bool
		errHas string
	}{
		{name: "whole JSON document", body: `{"a": [1, "x"]}`, want: map[string]any{"a": []any{1.0, "x"}}},
		{name: "JSON number", body: "0.25\n", want: 0.25},
		{name: "text number", body: "  42 ms", want: "42 ms"},
		{name: "plain number", body: "1e-3\n", want: 0.001},
		{name: "plain text", body: "OK\n", want: "OK"},
		{name: "NaN text is no data", body: "NaN", noData: true},
		{name: "infinite text is no data", body: "+Inf\n", noData: true},
		{name: "empty body", body: "", noData: true},
		{name: "null body", body: "null", noData: true},
		{name: "text with a path", body: "OK", path: "$.a", errHas: "not JSON"},
		{name: "two JSON values", body: `{"a":1} {"b":2}`, want: `{"a":1} {"b":2}`},
	}
	p := New(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, http.StatusOK, "", tt.body)
			got, err := p.Measure(context.Background(), metric(slipway.WebMetric{URL: srv.URL, JSONPath: tt.path}))
			switch {
			case tt.noData:
				if !errors.Is(err, slipway.ErrNoData) {
					t.Fatalf("Measure = %v, %v; want ErrNoData", got, err)
				}
			case tt.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tt.errHas) || errors.Is(err, slipway.ErrNoData) {
					t.Fatalf("Measure error = %v, want one saying %q", err, tt.errHas)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(got, tt.want):
				t.Fatalf("Measure = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestProvider_StatusErrors(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusMultipleChoices} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			body := `{"error": "backend down"}` + strings.Repeat("x", 1000)
			srv := serve(t, status, "application/json", body)
			_, err := New(nil).Measure(context.Background(), metric(slipway.WebMetric{URL: srv.URL}))
			if err == nil {
				t.Fatal("Measure succeeded on a non-2xx status")
			}
			msg := err.Error()
			if !strings.Contains(msg, http.StatusText(status)) || !strings.Contains(msg, "backend down") || errors.Is(err, slipway.ErrNoData) {
				t.Fatalf("error %q should name the status and quote the body", msg)
			}
			if len(msg) > 500 {
				t.Errorf("error quotes %d bytes; want a snippet", len(msg))
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := serve(t, http.StatusOK, "", "1")
		url := srv.URL
		srv.Close()
		if _, err := New(nil).Measure(context.Background(), metric(slipway.WebMetric{URL: url})); err == nil {
			t.Fatal("Measure succeeded against a closed server")
		}
	})
	t.Run("not a web metric", func(t *testing.T) {
		_, err := New(nil).Measure(context.Background(), slipway.Metric{Name: "j", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "x"}}})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
}

func TestProvider_RequestShape(t *testing.T) {
	type seen struct {
		method, body, ctype, auth, host string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, string(b), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Host}
		_, _ = io.WriteString(w, `{"rate": 0.5}`)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		w    slipway.WebMetric
		want seen
	}{
		{
			name: "GET by default, with headers",
			w:    slipway.WebMetric{Headers: map[string]string{"Authorization": "Bearer t0k", "Host": "api.internal"}},
			want: seen{method: "GET", auth: "Bearer t0k", host: "api.internal"},
		},
		{
			name: "POST when a body is given, as JSON",
			w:    slipway.WebMetric{Body: `{"query": "rate"}`},
			want: seen{method: "POST", body: `{"query": "rate"}`, ctype: "application/json"},
		},
		{
			name: "explicit method and content type",
			w:    slipway.WebMetric{Method: "put", Body: "q=rate", Headers: map[string]string{"content-type": "text/plain"}},
			want: seen{method: "PUT", body: "q=rate", ctype: "text/plain"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.URL, tt.w.JSONPath = srv.URL, "$.rate"
			v, err := New(srv.Client()).Measure(context.Background(), metric(tt.w))
			if err != nil || v != 0.5 {
				t.Fatalf("Measure = %v, %v", v, err)
			}
			s := <-got
			if tt.want.host == "" {
				tt.want.host = strings.TrimPrefix(srv.URL, "http://")
			}
			if s != tt.want {
				t.Fatalf("request = %+v, want %+v", s, tt.want)
			}
		})
	}
}

func TestProvider_Timeout(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1) // a request to /in-flight reached the handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/in-flight" {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	t.Run("metric timeout", func(t *testing.T) {
		_, err := New(nil).Measure(context.Background(), metric(slipway.WebMetric{URL: srv.URL, Timeout: slipway.Duration(20 * time.Millisecond)}))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 20ms") {
			t.Fatalf("err = %v, want a timeout after 20ms", err)
		}
	})
	t.Run("caller's context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }() // cancelled while the request is in flight
		_, err := New(nil).Measure(ctx, metric(slipway.WebMetric{URL: srv.URL + "/in-flight"}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestProvider_BodyTooLarge(t *testing.T) {
	srv := serve(t, http.StatusOK, "", strings.Repeat("7", MaxBody+10))
	_, err := New(nil).Measure(context.Background(), metric(slipway.WebMetric{URL: srv.URL}))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a too-large body error", err)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b", "$['a'][0]", "{$.x[-1]}", "a.b", "$[", "$.a[\"b\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		steps, err := parsePath(path)
		if err != nil {
			return
		}
		doc := map[string]any{"a": []any{1.0, map[string]any{"b": "x"}}}
		_, _, _ = lookup(doc, steps)
	})
}

// TestProvider_PrometheusStringValues reads the value of an instant vector query the way
// Prometheus's HTTP API answers it: a JSON string. A string that is entirely a finite number
// is a number; NaN and the infinities Prometheus writes are no data; anything else stays a
// string.
func TestProvider_PrometheusStringValues(t *testing.T) {
	tests := []struct {
		value  string
		want   any
		noData bool
	}{
		{value: "0.002", want: 0.002},
		{value: "0", want: 0.0},
		{value: "-1.5", want: -1.5},
		{value: "1e-05", want: 1e-05},
		{value: "12345", want: 12345.0},
		{value: "NaN", noData: true},
		{value: "+Inf", noData: true},
		{value: "-Inf", noData: true},
		{value: "Inf", noData: true},
		{value: "nan", noData: true},
		{value: "0.002 ", want: "0.002 "},
		{value: " 0.002", want: " 0.002"},
		{value: "12abc", want: "12abc"},
		{value: "0x10", want: "0x10"},
		{value: "1_000", want: "1_000"},
		{value: "+1", want: "+1"},
		{value: ".5", want: ".5"},
		{value: "1e400", want: "1e400"},
		{value: "up", want: "up"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			body := `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"web"},"value":[1700000000.123,` +
				strconv.Quote(tt.value) + `]}]}}`
			srv := serve(t, http.StatusOK, "application/json", body)
			got, err := New(nil).Measure(context.Background(), metric(slipway.WebMetric{
				URL: srv.URL + "/api/v1/query", JSONPath: "$.data.result[0].value[1]",
			}))
			switch {
			case tt.noData:
				if !errors.Is(err, slipway.ErrNoData) {
					t.Fatalf("Measure = %#v, %v; want ErrNoData", got, err)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(got, tt.want):
				t.Fatalf("Measure = %#v, want %#v", got, tt.want)
			}
		})
	}
	t.Run("the whole sample stays as Prometheus wrote it", func(t *testing.T) {
		srv := serve(t, http.StatusOK, "application/json", `{"data":{"result":[{"value":[1700000000,"0.002"]}]}}`)
		got, err := New(nil).Measure(context.Background(), metric(slipway.WebMetric{URL: srv.URL, JSONPath: "$.data.result[0].value"}))
		if err != nil || !reflect.DeepEqual(got, []any{1700000000.0, "0.002"}) {
			t.Fatalf("Measure = %#v, %v", got, err)
		}
	})
}

func TestProvider_CompareJudgesTheCanarysSampleAgainstTheBaseline(t *testing.T) {
	samples := map[string]string{
		"/base":   `{"ms": [100, 102, 98, 101, 99, 103, 97, 100, 101, 99, 100, 102]}`,
		"/same":   `{"ms": [101, 99, 100, 98, 102, 100, 103, 97, 99, 101, 100, 100]}`,
		"/slow":   `{"ms": [150, 152, 148, 151, 149, 153, 147, 150, 151, 149, 150, 152]}`,
		"/empty":  `{"ms": []}`,
		"/string": `{"ms": "fast"}`,
		"/mixed":  `{"ms": [1, "two", 3]}`,
	}
	big := make([]string, MaxCompareSample+1)
	for i := range big {
		big[i] = "1"
	}
	samples["/huge"] = `{"ms": [` + strings.Join(big, ",") + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := samples[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	p := New(srv.Client())
	m := func(canary string) slipway.Metric {
		return slipway.Metric{Name: "latency", Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{
			URL: srv.URL + canary, JSONPath: "$.ms",
			Compare: &slipway.WebCompare{Baseline: srv.URL + "/base", Comparison: slipway.Comparison{Direction: "increase", Tolerance: 0.1}}}}}
	}
	for path, want := range map[string]string{"/same": "Pass", "/slow": "High"} {
		v, err := p.Measure(context.Background(), m(path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := v.(map[string]any); got["class"] != want || got["canarySamples"] != 12 {
			t.Errorf("%s: %v, want %s on 12 samples", path, got, want)
		}
	}
	if _, err := p.Measure(context.Background(), m("/empty")); !errors.Is(err, slipway.ErrNoData) {
		t.Errorf("an empty sample: err %v, want no data", err)
	}
	for _, path := range []string{"/string", "/mixed", "/missing", "/huge"} {
		if v, err := p.Measure(context.Background(), m(path)); err == nil {
			t.Errorf("%s: %v, want an error", path, v)
		}
	}
	bad := m("/same")
	bad.Provider.Web.Compare.Baseline = srv.URL + "/missing"
	if v, err := p.Measure(context.Background(), bad); err == nil {
		t.Errorf("a baseline that answers 404: %v, want an error", v)
	}
}
