// Package web is the analysis provider that measures by an HTTP request: the measured value
// is the JSON value at the metric's jsonPath in the response body, or the whole body.
//
// Start reading at Provider.Measure; jsonpath.go holds the small JSONPath subset it takes.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis/stats"
)

// DefaultTimeout bounds a request when the metric sets no timeout.
const DefaultTimeout = 10 * time.Second

// MaxBody is the largest response body the provider reads.
const MaxBody = 1 << 20

// snippetLen is how much of an error response's body an error quotes.
const snippetLen = 256

// Provider measures web metrics.
type Provider struct {
	client *http.Client
}

var _ slipway.Provider = (*Provider)(nil)

// New returns a Provider that sends its requests with client (a client of its own when nil).
// Timeouts are the metric's, on each request's context.
func New(client *http.Client) *Provider {
	if client == nil {
		client = &http.Client{}
	}
	return &Provider{client: client}
}

// Measure sends the metric's request and returns the value it answered: a float64, bool,
// string, []any or map[string]any. The method is the metric's, else POST when it has a body
// and GET otherwise; a body goes as application/json unless the headers say otherwise.
//
// A non-2xx status is an error naming the status and quoting the body. A jsonPath that
// matches nothing, a null or empty value, and an empty body return slipway.ErrNoData. A
// string value that is entirely a JSON number is that number (Prometheus writes sample values
// as strings, "0.002"), so that result < 0.01 compares numbers; a string that spells NaN or an
// infinity ("NaN", "+Inf") returns slipway.ErrNoData, since it measures nothing. A body that
// is not JSON is taken, when jsonPath is empty, as text: a number when it parses as one (NaN
// and infinities are no data), else the string.
func (p *Provider) Measure(ctx context.Context, m slipway.Metric) (any, error) {
	w := m.Provider.Web
	if w == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "metric %s has no web provider", m.Name)
	}
	steps, err := parsePath(w.JSONPath)
	if err != nil {
		return nil, err
	}
	timeout := w.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	canary, err := p.fetch(ctx, m, w.URL, steps, timeout)
	if err != nil || w.Compare == nil {
		return canary, err
	}
	baseline, err := p.fetch(ctx, m, w.Compare.Baseline, steps, timeout)
	if err != nil {
		return nil, err
	}
	return compare(m, w.Compare, canary, baseline)
}

// fetch sends the metric's request to url and returns the value at its JSONPath.
func (p *Provider) fetch(ctx context.Context, m slipway.Metric, url string, steps []step, timeout time.Duration) (any, error) {
	w := m.Provider.Web
	method := strings.ToUpper(strings.TrimSpace(w.Method))
	if method == "" {
		method = http.MethodGet
		if w.Body != "" {
			method = http.MethodPost
		}
	}
	var body io.Reader
	if w.Body != "" {
		body = strings.NewReader(w.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "web metric %s: %v", m.Name, err)
	}
	for k, v := range w.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if w.Body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := p.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: timed out after %s: %w", method, url, timeout, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: timed out after %s reading the body: %w", method, url, timeout, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: status %s: %s", method, url, resp.Status, snippet(data))
	}
	if len(data) > MaxBody {
		return nil, fmt.Errorf("%s %s: response body is larger than %d bytes", method, url, MaxBody)
	}
	return extract(data, steps, w.JSONPath)
}

// MaxCompareSample is the most values a side of a comparison may have: the judge's cost grows
// as n log n, and past this a sample only narrows an interval far below any tolerance.
const MaxCompareSample = 20000

// compare judges the canary's sample against the baseline's: each must be a JSON array of
// numbers (an empty one, or a value of another kind, is no data or an error, never a pass).
func compare(m slipway.Metric, c *slipway.WebCompare, canary, baseline any) (any, error) {
	var sides [2][]float64
	for i, v := range []any{canary, baseline} {
		name := [2]string{"canary", "baseline"}[i]
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("web metric %s: the %s's answer at %q is %s, not an array of numbers to compare", m.Name, name, m.Provider.Web.JSONPath, kindOf(v))
		}
		if len(list) > MaxCompareSample {
			return nil, fmt.Errorf("web metric %s: the %s's sample has %d values, more than the %d a comparison takes; answer a sample of them", m.Name, name, len(list), MaxCompareSample)
		}
		for j, x := range list {
			f, ok := x.(float64)
			if !ok {
				return nil, fmt.Errorf("web metric %s: the %s's sample holds %s at [%d], not a number", m.Name, name, kindOf(x), j)
			}
			sides[i] = append(sides[i], f)
		}
	}
	out, err := stats.NewJudge(c.Direction, c.Confidence, c.Tolerance, c.Margin, c.MinSamples).Measure(sides[0], sides[1])
	if err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "web metric %s: compare: %v", m.Name, err)
	}
	return out, nil
}

// kindOf names a JSON value's kind for an error message.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// extract returns the value at steps in the body.
func extract(data []byte, steps []step, path string) (any, error) {
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return nil, fmt.Errorf("empty response body: %w", slipway.ErrNoData)
	}
	doc, err := decodeJSON(text)
	if err != nil {
		if len(steps) > 0 {
			return nil, fmt.Errorf("response is not JSON, so jsonPath %q cannot apply: %s: %w", path, snippet(data), err)
		}
		s := string(text)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("response %q is not a finite number: %w", s, slipway.ErrNoData)
			}
			return f, nil
		}
		return s, nil
	}
	v, ok, at := lookup(doc, steps)
	if !ok {
		return nil, fmt.Errorf("jsonPath %q matched nothing at %s: %w", path, at, slipway.ErrNoData)
	}
	if empty(v) {
		return nil, fmt.Errorf("jsonPath %q gave an empty value: %w", path, slipway.ErrNoData)
	}
	if s, ok := v.(string); ok {
		return stringValue(s, path)
	}
	return v, nil
}

// jsonNumber matches a number in JSON's grammar: no sign but '-', no leading zeros, no
// surrounding space, no hexadecimal.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// stringValue reads the string value s: a number when s is entirely a JSON number that a
// float64 holds; ErrNoData when s spells NaN or an infinity (Prometheus writes "NaN", "+Inf"
// and "-Inf"); else the string itself.
func stringValue(s, path string) (any, error) {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err == nil && (math.IsNaN(f) || math.IsInf(f, 0)):
		return nil, fmt.Errorf("jsonPath %q gave %q, not a finite number: %w", path, s, slipway.ErrNoData)
	case err == nil && jsonNumber.MatchString(s):
		return f, nil
	}
	return s, nil
}

// decodeJSON decodes one JSON value, with numbers as float64.
func decodeJSON(text []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return numbers(v)
}

// numbers turns every json.Number in v into a float64.
func numbers(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(t.String(), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", t, err)
		}
		return f, nil
	case []any:
		for i, e := range t {
			n, err := numbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	case map[string]any:
		for k, e := range t {
			n, err := numbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	}
	return v, nil
}

// empty reports a value that holds no measurement: null, "", [] or {}.
func empty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(t) == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return false
}

// snippet quotes the start of a body for an error message.
func snippet(data []byte) string {
	s := strings.TrimSpace(string(data))
	if len(s) > snippetLen {
		s = s[:snippetLen] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}
