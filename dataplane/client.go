package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"slipway.dev/slipway"
)

// callTimeout bounds one control call that does not wait on traffic (all but Drain and
// Remove).
const callTimeout = 5 * time.Second

// Info is what a data plane says of itself.
type Info struct {
	Protocol int    `json:"protocol"`
	Version  string `json:"version"`
	PID      int    `json:"pid"`
	// Boot names this run of the data plane: it changes when a new one is started.
	Boot string            `json:"boot"`
	Apps map[string]Status `json:"apps"`
}

// Client drives the data plane process of a data directory over its control socket. Its
// methods mirror Plane's; every failure to reach the data plane is an error (EUNAVAILABLE),
// never a default.
type Client struct {
	dir string
	hc  *http.Client
}

// Dial returns a Client for dir's data plane. It connects on each call.
func Dial(dir string) *Client {
	sock := filepath.Join(dir, SocketName)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{dir: dir, hc: &http.Client{Transport: tr}}
}

// Info returns the data plane's protocol, version, pid and apps.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	err := c.call(ctx, callTimeout, http.MethodGet, "/v1/state", nil, &info)
	return info, err
}

// Boot names the run of the data plane that answers (Plane.Boot). It does not read the
// tables: the local platform asks every second, and every app's table may be large.
func (c *Client) Boot(ctx context.Context) (string, error) {
	var info Info
	err := c.call(ctx, callTimeout, http.MethodGet, "/v1/state?apps=none", nil, &info)
	return info.Boot, err
}

// State returns the status of every app.
func (c *Client) State(ctx context.Context) (map[string]Status, error) {
	info, err := c.Info(ctx)
	return info.Apps, err
}

// Set makes app's traffic entry match s (Plane.Set).
func (c *Client) Set(ctx context.Context, app string, s Spec) (Status, error) {
	var st Status
	err := c.call(ctx, callTimeout, http.MethodPut, "/v1/apps/"+url.PathEscape(app), s, &st)
	return st, err
}

// Remove closes app's listeners, letting requests in flight finish (Plane.Remove).
func (c *Client) Remove(ctx context.Context, app string) error {
	return c.call(ctx, maxDrainWait, http.MethodDelete, "/v1/apps/"+url.PathEscape(app), nil, nil)
}

// Drain waits until app's backend has no request in flight (Plane.Drain).
func (c *Client) Drain(ctx context.Context, app, backend string) error {
	return c.call(ctx, maxDrainWait, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/drain?backend="+url.QueryEscape(backend), nil, nil)
}

// RequestWindow returns what app's revision served over the last d; an error when the data
// plane cannot say (the builtin analysis provider then has no measurement).
func (c *Client) RequestWindow(ctx context.Context, app, revision string, d time.Duration) (slipway.RequestWindow, error) {
	var w slipway.RequestWindow
	q := url.Values{"app": {app}, "revision": {revision}, "d": {d.String()}}
	err := c.call(ctx, callTimeout, http.MethodGet, "/v1/window?"+q.Encode(), nil, &w)
	return w, err
}

var _ slipway.RequestMetrics = (*Client)(nil)

// Gather returns the data plane's proxy metrics (a prometheus.Gatherer, so that the
// server's /metrics can serve them beside its own).
func (c *Client) Gather() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://dataplane/metrics", nil)
	if err != nil {
		return nil, err
	}
	format := expfmt.NewFormat(expfmt.TypeProtoDelim)
	req.Header.Set("Accept", string(format))
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("data plane metrics: %s", resp.Status)
	}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, maxReply), format)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("data plane metrics: %w", err)
		}
		out = append(out, mf)
	}
}

// Stop asks the data plane to stop (its listeners close, requests in flight finish) and
// waits until its process is gone, at most until ctx ends.
//
// A data plane that does not answer (hung, or stopped with SIGSTOP) is killed instead: the
// process its pid file names, once its environment shows it is this directory's data plane
// (EnvMark), so that a clean stop of the server never leaves it holding the apps' ports.
func (c *Client) Stop(ctx context.Context) error {
	info, err := c.Info(ctx)
	if err == nil {
		err = c.call(ctx, callTimeout, http.MethodPost, "/v1/stop", nil, nil)
	}
	if err == nil {
		if err = waitGone(ctx, info.PID); err == nil {
			return nil
		}
	}
	pid, kerr := killDataPlane(c.dir)
	if kerr != nil {
		return fmt.Errorf("%w; and it could not be killed: %w", err, kerr)
	}
	if pid == 0 {
		return nil // no data plane runs
	}
	kctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return waitGone(kctx, pid)
}

// CloseIdleConnections closes the client's idle control connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// call sends one control request with body (JSON, when not nil) and decodes the answer
// into out (when not nil); an error answer becomes its slipway.Error.
func (c *Client) call(ctx context.Context, timeout time.Duration, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dataplane"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer func() { _ = resp.Body.Close() }()
	lr := io.LimitReader(resp.Body, maxReply)
	if resp.StatusCode >= 300 {
		var e slipway.Error
		if err := json.NewDecoder(lr).Decode(&e); err != nil || e.Code == "" {
			return fmt.Errorf("data plane: %s %s: %s", method, path, resp.Status)
		}
		return fmt.Errorf("data plane: %w", &e)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, lr)
		return nil
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return fmt.Errorf("data plane: %s %s: %w", method, path, err)
	}
	return nil
}

// unreachable wraps a failure to reach the data plane.
func (c *Client) unreachable(err error) error {
	return fmt.Errorf("data plane of %s: %w", c.dir, &slipway.Error{Code: slipway.EUNAVAILABLE,
		Message: "the data plane does not answer: " + err.Error()})
}
