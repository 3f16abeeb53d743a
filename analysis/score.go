package analysis

import (
	"fmt"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis/stats"
)

// settleScored decides a scored run (slipway.Scoring) from its scorecard instead of its worst
// metric. Once every metric that is not a dry run has a class, the run is scored after each
// measurement: while metrics still measure, it fails at once when a critical metric is High
// or Low or the score is at or below the marginal threshold; once every metric has ended,
// it passes when the score reaches the pass threshold and no critical metric lacks data,
// fails under the marginal threshold, and is inconclusive between (a person decides). A
// scorecard that cannot be computed is an Inconclusive run, never a pass.
func settleScored(run *slipway.AnalysisRun, now time.Time) {
	var classes []stats.MetricClass
	allEnded, allClassed := true, true
	for i, res := range run.Results {
		if !res.Phase.Terminal() {
			allEnded = false
		}
		if res.DryRun || i >= len(run.Metrics) {
			continue
		}
		c := metricClass(res)
		if c == "" {
			allClassed = false
			continue
		}
		m := run.Metrics[i]
		classes = append(classes, stats.MetricClass{Name: m.Name, Group: m.Group, Weight: m.Weight, Critical: m.Critical, Class: c})
	}
	if !allClassed && !allEnded {
		return
	}
	if len(classes) == 0 {
		// Every metric is a dry run: nothing to score, and nothing is no evidence.
		end(run, slipway.VerdictInconclusive, "scored run: every metric is a dry run, so there is no score", now)
		return
	}
	sc := run.Scoring
	card, err := stats.Scorer{GroupWeights: sc.Groups, Marginal: sc.Marginal, Pass: sc.Pass}.Score(classes)
	if err != nil {
		end(run, slipway.VerdictInconclusive, "cannot score the run: "+err.Error(), now)
		return
	}
	run.Score = runScore(card, classes, allEnded)
	if !allEnded {
		switch {
		case card.Outcome == stats.OutcomeFail:
			end(run, slipway.VerdictFailed, card.Reason, now)
		case card.Score <= sc.Marginal:
			end(run, slipway.VerdictFailed, fmt.Sprintf("score %.1f is at or below the marginal threshold %g", card.Score, sc.Marginal), now)
		}
		return
	}
	phase := slipway.VerdictSuccessful
	switch card.Outcome {
	case stats.OutcomeFail:
		phase = slipway.VerdictFailed
	case stats.OutcomeMarginal:
		phase = slipway.VerdictInconclusive
	case stats.OutcomePass:
	}
	end(run, phase, card.Reason, now)
}

// metricClass is how a scored run weighs a metric now: an ended metric by its verdict (a
// failure by its last class, High or Low), a running one by its latest measurement, and ""
// for a running metric not measured yet.
func metricClass(res slipway.MetricResult) stats.Class {
	last := ""
	for i := len(res.Measurements) - 1; i >= 0 && last == ""; i-- {
		last = res.Measurements[i].Class
	}
	switch res.Phase {
	case slipway.VerdictSuccessful:
		return stats.ClassPass
	case slipway.VerdictFailed:
		if last == string(stats.ClassLow) {
			return stats.ClassLow
		}
		return stats.ClassHigh
	case slipway.VerdictInconclusive, slipway.VerdictTerminated, slipway.VerdictError:
		return stats.ClassNoData
	case slipway.VerdictRunning:
	}
	return stats.Class(last)
}

func runScore(card stats.Scorecard, classes []stats.MetricClass, final bool) *slipway.RunScore {
	s := &slipway.RunScore{
		Score:   card.Score,
		Outcome: string(card.Outcome),
		Final:   final,
		Reason:  card.Reason,
		Metrics: make(map[string]string, len(classes)),
	}
	for _, g := range card.Groups {
		s.Groups = append(s.Groups, slipway.GroupScore{Name: g.Name, Score: g.Score, Weight: g.Weight, Pass: g.Pass, High: g.High, Low: g.Low, NoData: g.NoData})
	}
	for _, c := range classes {
		s.Metrics[c.Name] = string(c.Class)
	}
	return s
}

// Brief says where run stands so far, in one line: a scored run's latest score, then each
// metric's measurements and latest verdict ("errors 3/5 Successful; p95 waiting for a sample").
func Brief(run slipway.AnalysisRun) string {
	var parts []string
	if sc := run.Score; sc != nil {
		when := "interim"
		if sc.Final {
			when = "final"
		}
		parts = append(parts, fmt.Sprintf("%s score %.1f (%s)", when, sc.Score, sc.Outcome))
	}
	for i, res := range run.Results {
		var part string
		switch {
		case res.Waiting != nil && !res.Phase.Terminal():
			part = res.Name + " waiting for its sample"
		default:
			n := "∞"
			if i < len(run.Metrics) {
				if c := measurementCount(run.Metrics[i]); c > 0 {
					n = fmt.Sprint(c)
				}
			}
			part = fmt.Sprintf("%s %d/%s %s", res.Name, res.Count, n, res.Phase)
			if k := len(res.Measurements); k > 0 && !res.Phase.Terminal() {
				part += ", last " + string(res.Measurements[k-1].Phase)
			}
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
