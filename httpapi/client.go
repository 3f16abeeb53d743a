package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"slipway.dev/slipway"
)

// Client calls a slipway server. Errors the server answers come back as *slipway.Error with
// the server's code, message and details; a server that cannot be reached gives a plain
// error.
type Client struct {
	base  string
	hc    *http.Client
	token string
	// reconnect, when set, lets streams outlive a broken connection (client_stream.go).
	reconnect *Reconnect
	// reached is set once the server has answered a request: from then on a stream that
	// cannot connect meets a server that went away, not a wrong address (see follow).
	reached atomic.Bool
	// serverVersion is the version the server's last answer gave (VersionHeader).
	serverVersion atomic.Pointer[string]
}

var (
	_ slipway.Deployer     = (*Client)(nil)
	_ slipway.Operator     = (*Client)(nil)
	_ slipway.StatusReader = (*Client)(nil)
)

// maxErrorBody caps how much of an error answer the client reads.
const maxErrorBody = 1 << 20

// NewClient returns a Client for the server at base (for example "http://127.0.0.1:7070").
// A nil hc means a client without a timeout, so that event streams can last; bound calls with
// their contexts.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

// SetToken sets the API token the client sends (Authorization: Bearer). The server records
// its changes as made by that token's name.
func (c *Client) SetToken(secret string) { c.token = secret }

// Plan asks what applying s would change. opts.Actor is ignored: the server records the
// token's name.
func (c *Client) Plan(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	var p slipway.Plan
	err := c.do(ctx, http.MethodPost, "/api/v1/plan", ApplyRequest{Set: s, Prune: opts.Prune, Reason: opts.Reason}, &p)
	return p, err
}

// Apply applies s and returns what changed, with the rollouts it started.
func (c *Client) Apply(ctx context.Context, s slipway.Set, opts slipway.ApplyOptions) (slipway.Plan, error) {
	var p slipway.Plan
	err := c.do(ctx, http.MethodPost, "/api/v1/apply", ApplyRequest{Set: s, Prune: opts.Prune, Reason: opts.Reason}, &p)
	return p, err
}

// Apps returns every app.
func (c *Client) Apps(ctx context.Context) ([]slipway.AppState, error) {
	var v []slipway.AppState
	return v, c.get(ctx, "/api/v1/apps", &v)
}

// App returns one app; ENOTFOUND when it does not exist.
func (c *Client) App(ctx context.Context, name string) (slipway.AppState, error) {
	var v slipway.AppState
	return v, c.get(ctx, "/api/v1/apps/"+url.PathEscape(name), &v)
}

// Status returns an app's status; ENOTFOUND when it does not exist.
func (c *Client) Status(ctx context.Context, app string) (slipway.AppStatus, error) {
	var v slipway.AppStatus
	return v, c.get(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/status", &v)
}

// Revisions returns an app's kept revisions, newest first.
func (c *Client) Revisions(ctx context.Context, app string) ([]slipway.Revision, error) {
	var v []slipway.Revision
	return v, c.get(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/revisions", &v)
}

// Rollouts returns an app's rollouts, newest first, at most limit (all when limit <= 0).
func (c *Client) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	p := "/api/v1/apps/" + url.PathEscape(app) + "/rollouts"
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var v []slipway.Rollout
	return v, c.get(ctx, p, &v)
}

// Rollout returns one rollout.
func (c *Client) Rollout(ctx context.Context, id string) (slipway.Rollout, error) {
	var v slipway.Rollout
	return v, c.get(ctx, "/api/v1/rollouts/"+url.PathEscape(id), &v)
}

// AnalysisRuns returns a rollout's analysis runs, oldest first.
func (c *Client) AnalysisRuns(ctx context.Context, rollout string) ([]slipway.AnalysisRun, error) {
	var v []slipway.AnalysisRun
	return v, c.get(ctx, "/api/v1/rollouts/"+url.PathEscape(rollout)+"/analysisruns", &v)
}

// FlagAnalysisRuns returns the analysis runs of a flag's ramps, oldest first.
func (c *Client) FlagAnalysisRuns(ctx context.Context, flag string) ([]slipway.AnalysisRun, error) {
	var v []slipway.AnalysisRun
	return v, c.get(ctx, "/api/v1/analysisruns?flag="+url.QueryEscape(flag), &v)
}

// AnalysisRun returns one analysis run.
func (c *Client) AnalysisRun(ctx context.Context, id string) (slipway.AnalysisRun, error) {
	var v slipway.AnalysisRun
	return v, c.get(ctx, "/api/v1/analysisruns/"+url.PathEscape(id), &v)
}

// Operate carries out a manual operation and returns the rollout it affected.
func (c *Client) Operate(ctx context.Context, op slipway.Operation) (slipway.Rollout, error) {
	var v slipway.Rollout
	body := OperationRequest{Full: op.Full, To: op.To, WithSteps: op.WithSteps, Reason: op.Reason}
	p := "/api/v1/apps/" + url.PathEscape(op.App) + "/" + url.PathEscape(string(op.Kind))
	return v, c.do(ctx, http.MethodPost, p, body, &v)
}

// Templates returns every analysis template.
func (c *Client) Templates(ctx context.Context) ([]slipway.AnalysisTemplate, error) {
	var v []slipway.AnalysisTemplate
	return v, c.get(ctx, "/api/v1/templates", &v)
}

// Template returns one analysis template.
func (c *Client) Template(ctx context.Context, name string) (slipway.AnalysisTemplate, error) {
	var v slipway.AnalysisTemplate
	return v, c.get(ctx, "/api/v1/templates/"+url.PathEscape(name), &v)
}

// Events returns the events f selects, oldest first.
func (c *Client) Events(ctx context.Context, f slipway.EventFilter) ([]slipway.Event, error) {
	var v []slipway.Event
	return v, c.get(ctx, "/api/v1/events?"+filterQuery(f, true).Encode(), &v)
}

func filterQuery(f slipway.EventFilter, withLimit bool) url.Values {
	q := url.Values{}
	if f.App != "" {
		q.Set("app", f.App)
	}
	if f.Rollout != "" {
		q.Set("rollout", f.Rollout)
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatInt(f.After, 10))
	}
	if withLimit && f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, slipway.Errorf(slipway.EINVALID, "bad server address %q: %v", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends one request and decodes a 200 answer into out, or the error shape into an error.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return c.unreachable(err)
	}
	c.reached.Store(true)
	c.noteVersion(resp)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// noteVersion remembers the server's version from an answer.
func (c *Client) noteVersion(resp *http.Response) {
	if v := resp.Header.Get(VersionHeader); v != "" {
		c.serverVersion.Store(&v)
	}
}

// ServerVersion returns the version the server gave in its last answer, "" before one.
func (c *Client) ServerVersion() string {
	if v := c.serverVersion.Load(); v != nil {
		return *v
	}
	return ""
}

// unreachable is the error of a request that got no answer: the server may be back later.
func (c *Client) unreachable(err error) error {
	return &unavailable{fmt.Errorf("cannot reach slipway server at %s: %w", c.base, err)}
}

// answerError turns a non-200 answer into an error: a *slipway.Error, marked transient
// when the status says the server is unavailable for now (502, 503, 504).
func answerError(resp *http.Response) error {
	err := decodeError(resp)
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return &unavailable{err}
	}
	return err
}

// decodeError turns a non-200 answer into a *slipway.Error.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err == nil && eb.Error != nil && eb.Error.Code != "" {
		return eb.Error
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = resp.Status
	}
	return slipway.Errorf(codeOf(resp.StatusCode), "server answered %s: %s", resp.Status, msg)
}
