package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
)

// analysisReport is what `slipway analysis` prints: a rollout and its analysis runs.
type analysisReport struct {
	App     string                `json:"app"`
	Rollout slipway.Rollout       `json:"rollout"`
	Runs    []slipway.AnalysisRun `json:"runs"`
}

func newAnalysisCommand(g *globals) *cobra.Command {
	var rollout string
	var last int
	cmd := &cobra.Command{
		Use:   "analysis APP",
		Short: "Show the analysis runs of an app's latest rollout: metrics, measurements, verdicts and why",
		Long: `analysis prints every analysis run of the app's latest rollout (or of --rollout ID), oldest
first: each run's verdict and why, and for each metric how it is judged (its conditions, or
its sequential test of canary against stable), its verdict and why, what it waits for, and
its last measurements with their values; a sequential test's measurements show both
revisions' requests and failures, the difference and the evidence.

-o json|yaml prints {"app", "rollout", "runs": [...]}: the runs as the API has them
(GET /api/v1/rollouts/{id}/analysisruns), every measurement kept.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			var ro slipway.Rollout
			var err error
			if rollout != "" {
				if ro, err = c.Rollout(ctx, rollout); err != nil {
					return err
				}
				if ro.App != args[0] {
					return slipway.Errorf(slipway.EINVALID, "rollout %s is of app %s, not %s", rollout, ro.App, args[0])
				}
			} else {
				ros, err := c.Rollouts(ctx, args[0], 1)
				if err != nil {
					return err
				}
				if len(ros) == 0 {
					return slipway.Errorf(slipway.ENOTFOUND, "app %s has had no rollout", args[0])
				}
				ro = ros[0]
			}
			runs, err := c.AnalysisRuns(ctx, ro.ID)
			if err != nil {
				return err
			}
			rep := analysisReport{App: args[0], Rollout: ro, Runs: runs}
			return g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) error {
				return writeAnalysis(w, rep, last)
			})
		},
	}
	cmd.Flags().StringVar(&rollout, "rollout", "", "the rollout to show (default: the app's latest)")
	cmd.Flags().IntVar(&last, "last", 3, "show each metric's last N measurements (0: all kept)")
	return cmd
}

func writeAnalysis(w io.Writer, rep analysisReport, last int) error {
	var b strings.Builder
	ro := rep.Rollout
	fmt.Fprintf(&b, "Rollout %s of %s: %s -> %s, %s", escape(ro.ID), escape(ro.App),
		orDash(escape(ro.FromVersion)), escape(ro.ToVersion), escape(ro.Phase))
	if ro.Reason != "" {
		fmt.Fprintf(&b, " (%s)", escape(ro.Reason))
	}
	b.WriteByte('\n')
	if len(rep.Runs) == 0 {
		b.WriteString("  no analysis runs\n")
	}
	for _, run := range rep.Runs {
		writeRun(&b, run, last)
	}
	_, err := io.WriteString(w, tidy(b.String()))
	return err
}

func writeRun(b *strings.Builder, run slipway.AnalysisRun, last int) {
	fmt.Fprintf(b, "\nRun %s: %s analysis", escape(run.ID), escape(run.Kind))
	if run.Kind == slipway.AnalysisStep {
		fmt.Fprintf(b, " at step %d", run.Step+1)
	}
	fmt.Fprintf(b, " of %s, %s\n", escape(strings.Join(run.Templates, ", ")), escape(run.Phase))
	span := "started " + stamp(run.StartedAt)
	if run.FinishedAt != nil {
		span += fmt.Sprintf(", ended %s (%s)", stamp(*run.FinishedAt), run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond))
	}
	fmt.Fprintf(b, "  %s\n", span)
	if run.Message != "" {
		fmt.Fprintf(b, "  why: %s\n", escape(run.Message))
	}
	writeScore(b, run)
	for i, res := range run.Results {
		var m slipway.Metric
		if i < len(run.Metrics) {
			m = run.Metrics[i]
		}
		dry := ""
		if res.DryRun {
			dry = " (dry run)"
		}
		fmt.Fprintf(b, "  Metric %s%s: %s; %d measured (%d successful, %d failed, %d inconclusive), %s\n",
			escape(res.Name), dry, escape(res.Phase), res.Count, res.Successful, res.Failed, res.Inconclusive, plural(res.Errors, "error"))
		fmt.Fprintf(b, "    judged by: %s\n", judgedBy(m))
		if run.Scoring != nil && !res.DryRun {
			crit := ""
			if m.Critical {
				crit = ", critical"
			}
			w := m.Weight
			if w == 0 {
				w = 1
			}
			class := "not classed yet"
			if sc := run.Score; sc != nil && sc.Metrics[res.Name] != "" {
				class = sc.Metrics[res.Name]
			}
			fmt.Fprintf(b, "    scored: group %s, weight %s%s; class %s\n", escape(orDash(m.Group)), num(w), crit, escape(class))
		}
		if res.Message != "" {
			fmt.Fprintf(b, "    why: %s\n", escape(res.Message))
		}
		if wt := res.Waiting; wt != nil {
			fmt.Fprintf(b, "    waiting since %s (%s): %s\n", stamp(wt.Since), plural(wt.Checks, "check"), escape(wt.Message))
		}
		ms := res.Measurements
		if last > 0 && len(ms) > last {
			fmt.Fprintf(b, "    (%d earlier measurements not shown; --last 0 shows all)\n", len(ms)-last)
			ms = ms[len(ms)-last:]
		}
		for _, x := range ms {
			fmt.Fprintf(b, "    %s  %s  %s\n", x.FinishedAt.UTC().Format("15:04:05.000"), escape(x.Phase), measured(m, x))
		}
	}
}

// writeScore shows a scored run's thresholds and latest scorecard.
func writeScore(b *strings.Builder, run slipway.AnalysisRun) {
	sc := run.Scoring
	if sc == nil {
		return
	}
	fmt.Fprintf(b, "  scoring: marginal %s, pass %s", num(sc.Marginal), num(sc.Pass))
	card := run.Score
	if card == nil {
		b.WriteString("; no score until every metric has a class\n")
		return
	}
	when := "interim"
	if card.Final {
		when = "final"
	}
	fmt.Fprintf(b, "; %s score %.1f (%s): %s\n", when, card.Score, escape(card.Outcome), escape(card.Reason))
	for _, g := range card.Groups {
		fmt.Fprintf(b, "    group %s: %.1f, weight %.0f%% (%d pass, %d high, %d low, %d no data)\n",
			escape(orDash(g.Name)), g.Score, 100*g.Weight, g.Pass, g.High, g.Low, g.NoData)
	}
}

// judgedBy says in words how metric m is judged.
func judgedBy(m slipway.Metric) string {
	if c, base := comparisonOf(m); c != nil {
		conf := c.Confidence
		if conf == 0 {
			conf = 0.95
		}
		moves := map[string]string{"increase": "rises", "decrease": "falls", "either": "moves either way"}[c.Direction]
		return escape(fmt.Sprintf("%s, canary compared with baseline %s (Mann-Whitney U): worse when it %s beyond tolerance %s or margin %s at %s%% confidence",
			orDash(m.Provider.Kind()), base, orDash(moves), num(c.Tolerance), num(c.Margin), num(100*conf)))
	}
	var what string
	if bm := m.Provider.Builtin; bm != nil {
		what = "builtin " + bm.Metric
		if bm.Metric == slipway.BuiltinSlowRate {
			what += fmt.Sprintf(" (slower than %s)", bm.SlowerThan)
		}
		if s := bm.Sequential; s != nil {
			min := s.MinRequests
			if min == 0 {
				min = slipway.DefaultSequentialMinRequests
			}
			alpha := s.Alpha
			if alpha == 0 {
				alpha = 0.05
			}
			return escape(fmt.Sprintf("sequential test of %s, canary %s against baseline %s: fails when its failure rate is shown to exceed the baseline's by more than %s (tolerance %s, alpha %s), passes when shown not to; at least %d requests each",
				what, bm.Revision, s.Baseline, points(s.Tolerance), num(s.Tolerance), num(alpha), min))
		}
	} else if k := m.Provider.Kind(); k != "" {
		what = k
	}
	var conds []string
	if m.SuccessCondition != "" {
		conds = append(conds, "success when "+m.SuccessCondition)
	}
	if m.FailureCondition != "" {
		conds = append(conds, "failure when "+m.FailureCondition)
	}
	if len(conds) == 0 {
		conds = append(conds, "no condition")
	}
	return escape(fmt.Sprintf("%s, %s; failureLimit %d", orDash(what), strings.Join(conds, ", "), m.FailureLimit))
}

// comparisonOf returns the comparison that judges m and the baseline it names (nil for a
// metric judged otherwise).
func comparisonOf(m slipway.Metric) (*slipway.Comparison, string) {
	switch p := m.Provider; {
	case p.Prometheus != nil && p.Prometheus.Compare != nil:
		return &p.Prometheus.Compare.Comparison, "query " + p.Prometheus.Compare.Baseline
	case p.Builtin != nil && p.Builtin.Compare != nil:
		return &p.Builtin.Compare.Comparison, "revision " + p.Builtin.Compare.Baseline
	case p.Web != nil && p.Web.Compare != nil:
		return &p.Web.Compare.Comparison, p.Web.Compare.Baseline
	}
	return nil, ""
}

// measured describes one measurement: a sequential test's counts and evidence, or the
// value, and the judge's message.
func measured(m slipway.Metric, x slipway.Measurement) string {
	if bm := m.Provider.Builtin; bm != nil && bm.Sequential != nil && x.Value != "" {
		var v struct {
			Decision         string
			Canary, Baseline struct{ Requests, Failures, Rate float64 }
			Difference       float64
			FailEvidence     float64 `json:"failEvidence"`
			FailAt           float64 `json:"failAt"`
			PassEvidence     float64 `json:"passEvidence"`
			PassAt           float64 `json:"passAt"`
		}
		if json.Unmarshal([]byte(x.Value), &v) == nil && v.Decision != "" {
			return escape(fmt.Sprintf("%s: canary %s/%s failed (%s%%), stable %s/%s (%s%%), difference %+.2f points; evidence to fail %s of %s, to pass %s of %s",
				v.Decision, num(v.Canary.Failures), num(v.Canary.Requests), num(100*v.Canary.Rate),
				num(v.Baseline.Failures), num(v.Baseline.Requests), num(100*v.Baseline.Rate), 100*v.Difference,
				num(v.FailEvidence), num(v.FailAt), num(v.PassEvidence), num(v.PassAt)))
		}
	}
	var parts []string
	if x.Value != "" && m.Provider.Job == nil {
		parts = append(parts, "value "+x.Value)
	}
	if x.Message != "" {
		parts = append(parts, x.Message)
	}
	return escape(strings.Join(parts, ": "))
}

// points writes a difference of rates in percentage points.
func points(r float64) string {
	if p := num(100 * r); p != "1" {
		return p + " points"
	}
	return "1 point"
}

// num writes a number with at most four significant digits.
func num(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
