package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"slipway.dev/slipway"
)

// insightsRoutes adds GET /api/v1/insights when the config has an InsightsReader.
func (s *Server) insightsRoutes() {
	if s.cfg.Insights == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/insights", s.allow(slipway.PermRead, s.insights))
}

// insights answers the delivery figures of ?app=&environment=&since=&until= (since and
// until: RFC 3339 times, or ages before now like 30d, 2w or 12h).
func (s *Server) insights(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query()
	q := slipway.InsightsQuery{App: p.Get("app"), Environment: p.Get("environment")}
	now := time.Now()
	for _, b := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v := p.Get(b.name)
		if v == "" {
			continue
		}
		t, err := slipway.ParseInsightsTime(v, now)
		if err != nil {
			s.fail(w, r, slipway.Errorf(slipway.EINVALID, "query parameter %s: %s", b.name, slipway.ErrorMessage(err)))
			return
		}
		*b.to = t
	}
	v, err := s.cfg.Insights.Insights(r.Context(), q)
	s.reply(w, r, v, err)
}

// Insights returns the delivery figures of q (GET /api/v1/insights).
func (c *Client) Insights(ctx context.Context, q slipway.InsightsQuery) (slipway.Insights, error) {
	p := url.Values{}
	for k, v := range map[string]string{"app": q.App, "environment": q.Environment} {
		if v != "" {
			p.Set(k, v)
		}
	}
	for k, t := range map[string]time.Time{"since": q.Since, "until": q.Until} {
		if !t.IsZero() {
			p.Set(k, t.Format(time.RFC3339Nano))
		}
	}
	path := "/api/v1/insights"
	if len(p) > 0 {
		path += "?" + p.Encode()
	}
	var v slipway.Insights
	return v, c.get(ctx, path, &v)
}

var _ slipway.InsightsReader = (*Client)(nil)
