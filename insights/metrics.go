package insights

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"slipway.dev/slipway"
)

// Defaults of CollectorConfig.
const (
	// DefaultMetricsWindow is the window the gauges cover: the last 30 days.
	DefaultMetricsWindow = slipway.DefaultInsightsWindow
	// DefaultMetricsTTL is how long one computation serves scrapes.
	DefaultMetricsTTL = 30 * time.Second
	// metricsTimeout bounds one computation on a scrape (Collect has no context).
	metricsTimeout = 10 * time.Second
)

// CollectorConfig is what a Collector serves.
type CollectorConfig struct {
	// Window is how far back the gauges look from each computation (DefaultMetricsWindow);
	// TTL how long a computation is served before the next scrape computes again
	// (DefaultMetricsTTL).
	Window, TTL time.Duration
	Now         func() time.Time
}

// Collector serves each app's figures in each environment over the last Window as
// Prometheus gauges labelled app and environment. A figure that is absent (no deployment,
// no lead time, no restore) has no series.
type Collector struct {
	src slipway.InsightsReader
	cfg CollectorConfig

	deployments, attempts, perDay, leadTime, cfr, restore, open *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
	err     error
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of src's figures; register it with a prometheus.Registerer.
func NewCollector(src slipway.InsightsReader, cfg CollectorConfig) *Collector {
	if cfg.Window <= 0 {
		cfg.Window = DefaultMetricsWindow
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultMetricsTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	labels := []string{"app", "environment"}
	quantile := []string{"app", "environment", "quantile"}
	return &Collector{src: src, cfg: cfg,
		deployments: prometheus.NewDesc("slipway_deployments", "Deployments (rollouts, not rollbacks) that completed in the window (the last 30 days by default).", labels, nil),
		attempts:    prometheus.NewDesc("slipway_deployment_attempts", "Deployments that ended in the window, completed or aborted (superseded ones and rollbacks left out).", labels, nil),
		perDay:      prometheus.NewDesc("slipway_deployment_frequency_per_day", "Completed deployments per day over the window.", labels, nil),
		leadTime:    prometheus.NewDesc("slipway_lead_time_seconds", "Lead time for changes of the deployments completed in the window: from a release's change to its rollout's completion (nearest-rank quantiles).", quantile, nil),
		cfr:         prometheus.NewDesc("slipway_change_failure_ratio", "Deployments in the window that failed (aborted, rolled back or followed by a fix within the failure horizon) over all that ended in it.", labels, nil),
		restore:     prometheus.NewDesc("slipway_time_to_restore_seconds", "Time to restore of the failures in the window: from the failed deployment's end to the next healthy deployment's (nearest-rank quantiles).", quantile, nil),
		open:        prometheus.NewDesc("slipway_failures_open", "Failures in the window with no healthy deployment after them yet.", labels, nil),
	}
}

// Describe sends the gauges' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.deployments, c.attempts, c.perDay, c.leadTime, c.cfr, c.restore, c.open} {
		ch <- d
	}
}

// Collect sends the gauges, computed anew when the last computation is older than TTL.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.at.IsZero() || now.Sub(c.at) >= c.cfg.TTL {
		c.metrics, c.err = c.compute(now)
		c.at = now
	}
	if c.err != nil {
		ch <- prometheus.NewInvalidMetric(c.deployments, c.err)
		return
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

// compute reads the figures of the window ending at now and turns them into metrics.
func (c *Collector) compute(now time.Time) ([]prometheus.Metric, error) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	in, err := c.src.Insights(ctx, slipway.InsightsQuery{Since: now.Add(-c.cfg.Window), Until: now})
	if err != nil {
		return nil, err
	}
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for _, a := range in.Apps {
		f := a.Figures
		gauge(c.deployments, float64(f.Deployments), a.App, a.Environment)
		gauge(c.attempts, float64(f.Attempts), a.App, a.Environment)
		if f.PerDay != nil {
			gauge(c.perDay, *f.PerDay, a.App, a.Environment)
		}
		if f.LeadTime != nil {
			gauge(c.leadTime, f.LeadTime.Median.D().Seconds(), a.App, a.Environment, "0.5")
			gauge(c.leadTime, f.LeadTime.P90.D().Seconds(), a.App, a.Environment, "0.9")
		}
		if f.ChangeFailureRate != nil {
			gauge(c.cfr, *f.ChangeFailureRate, a.App, a.Environment)
		}
		if f.TimeToRestore != nil {
			gauge(c.restore, f.TimeToRestore.Median.D().Seconds(), a.App, a.Environment, "0.5")
		}
		gauge(c.open, float64(f.OpenFailures), a.App, a.Environment)
	}
	return out, nil
}
