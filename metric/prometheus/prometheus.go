// Package prometheus is the analysis provider that measures by a PromQL query to a Prometheus
// server's HTTP API (or anything that serves it), through client_golang's API client. The
// answer becomes one number, or no data: an empty answer, NaN and infinities are never a pass.
//
// Start reading at Provider.Measure; result.go turns an answer (scalar, vector, matrix,
// string) into the measured number, and headers.go reads the headers a query sends.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"slipway.dev/slipway"
)

// MaxResponse is the largest response body the provider reads; a larger one is an error.
const MaxResponse = 4 << 20

// snippetLen is how much of an error response's body an error quotes.
const snippetLen = 256

// Config is what a Provider needs; every field is optional.
type Config struct {
	// Transport sends the queries; a clone of http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Log receives the warnings and infos Prometheus answers with; discarded when nil.
	Log *slog.Logger
}

// Provider measures Prometheus metrics.
type Provider struct {
	transport http.RoundTripper
	log       *slog.Logger
}

var _ slipway.Provider = (*Provider)(nil)

// New returns a Provider. It starts nothing.
func New(cfg Config) *Provider {
	p := &Provider{transport: cfg.Transport, log: cfg.Log}
	if p.transport == nil {
		p.transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Measure sends the metric's query, an instant query now or a range query over the last
// range.duration, and returns the answer as one float64 (see result.go): the only sample,
// or the samples reduced by the metric's reduce.
//
// An answer without a sample, and a value that is NaN or an infinity, return
// slipway.ErrNoData. An answer with more than one sample and no reduce, a string answer, a
// native histogram, an error of the query (Prometheus's own message, such as a PromQL parse
// error), a response larger than MaxResponse, a server that cannot be reached and a query
// that takes longer than the timeout (DefaultPrometheusTimeout when unset) are errors.
// Warnings the answer carries are logged with the metric's name.
func (p *Provider) Measure(ctx context.Context, m slipway.Metric) (any, error) {
	pm := m.Provider.Prometheus
	if pm == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "metric %s has no prometheus provider", m.Name)
	}
	if err := check(pm); err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "prometheus metric %s: %v", m.Name, err)
	}
	hdr, err := headers(pm)
	if err != nil {
		return nil, fmt.Errorf("prometheus metric %s: %w", m.Name, err)
	}
	timeout := pm.Timeout.D()
	if timeout <= 0 {
		timeout = slipway.DefaultPrometheusTimeout.D()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	client, err := api.NewClient(api.Config{Address: pm.Address, RoundTripper: &transport{base: p.transport, header: hdr}})
	if err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "prometheus metric %s: address %q: %v", m.Name, pm.Address, err)
	}
	prom := v1.NewAPI(client)
	now := time.Now()
	var (
		answer   any
		warnings v1.Warnings
		infos    v1.Infos
	)
	if r := pm.Range; r != nil {
		answer, warnings, infos, err = prom.QueryRange(ctx, pm.Query,
			v1.Range{Start: now.Add(-r.Duration.D()), End: now, Step: r.Step.D()}, v1.WithTimeout(timeout))
	} else {
		answer, warnings, infos, err = prom.Query(ctx, pm.Query, now, v1.WithTimeout(timeout))
	}
	log := p.log.With("metric", m.Name, "address", pm.Address)
	if len(warnings) > 0 {
		log.Warn("prometheus answered with warnings", "query", pm.Query, "warnings", []string(warnings))
	}
	if len(infos) > 0 {
		log.Debug("prometheus answered with infos", "query", pm.Query, "infos", []string(infos))
	}
	if err != nil {
		return nil, queryError(ctx, pm.Address, timeout, err)
	}
	if c := pm.Compare; c != nil && pm.Range != nil {
		// The baseline over the same range, then the two samples judged together.
		r := pm.Range
		base, bwarn, _, err := prom.QueryRange(ctx, c.Baseline, v1.Range{Start: now.Add(-r.Duration.D()), End: now, Step: r.Step.D()}, v1.WithTimeout(timeout))
		if len(bwarn) > 0 {
			log.Warn("prometheus answered the baseline with warnings", "query", c.Baseline, "warnings", []string(bwarn))
		}
		if err != nil {
			return nil, queryError(ctx, pm.Address, timeout, err)
		}
		return compare(c, answer, base)
	}
	v, err := value(answer, pm.Reduce)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// check refuses what validation refuses too, for a metric that did not pass through it.
func check(pm *slipway.PrometheusMetric) error {
	if c := pm.Compare; c != nil && (pm.Range == nil || strings.TrimSpace(c.Baseline) == "") {
		return fmt.Errorf("compare needs a range and a baseline query")
	}
	if err := checkAddress(pm.Address); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(pm.Query) == "":
		return errors.New("the query is empty")
	case len(pm.Query) > slipway.MaxPrometheusQuery:
		return fmt.Errorf("the query is %d bytes, longer than %d", len(pm.Query), slipway.MaxPrometheusQuery)
	}
	if pm.Reduce != "" && !knownReduce(pm.Reduce) {
		return fmt.Errorf("reduce %q is not one of %s", pm.Reduce, strings.Join(slipway.Reductions(), ", "))
	}
	if r := pm.Range; r != nil {
		if r.Duration <= 0 || r.Step <= 0 {
			return fmt.Errorf("range needs a positive duration and step, not %s and %s", r.Duration, r.Step)
		}
		if n := r.Duration / r.Step; n > slipway.MaxPrometheusPoints {
			return fmt.Errorf("range asks for %d points per series, more than %d", n, slipway.MaxPrometheusPoints)
		}
	}
	return nil
}

// checkAddress checks a server's base URL: absolute http or https, no query or fragment.
func checkAddress(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("address %q is not an http or https URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("address %q has a query or fragment; give the server's base URL", raw)
	}
	return nil
}

// queryError describes an error of a query: a timeout, Prometheus's own error (its type and
// message, and the start of the body of a response that was not the API's), or the error of
// the connection.
func queryError(ctx context.Context, address string, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("prometheus %s: query timed out after %s: %w", address, timeout, context.DeadlineExceeded)
	}
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		if d := strings.TrimSpace(apiErr.Detail); d != "" {
			if len(d) > snippetLen {
				d = d[:snippetLen] + "…"
			}
			return fmt.Errorf("prometheus %s: %w: %q", address, err, d)
		}
		return fmt.Errorf("prometheus %s: %w", address, err)
	}
	return fmt.Errorf("prometheus %s: %w", address, err)
}

// transport sends a query with the metric's headers and bounds the response it reads.
type transport struct {
	base   http.RoundTripper
	header http.Header
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range t.header {
		if k == "Host" {
			req.Host = vs[0]
			continue
		}
		req.Header[k] = vs
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{body: resp.Body, left: MaxResponse}
	return resp, nil
}

// errTooLarge is the error of reading past MaxResponse.
var errTooLarge = fmt.Errorf("response body is larger than %d bytes", MaxResponse)

// limitedBody reads at most left more bytes of body, and errs instead of reading more.
type limitedBody struct {
	body io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly MaxResponse bytes from a larger one.
		var one [1]byte
		n, err := b.body.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }
