package stats

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Outcome is the verdict of a Scorecard.
type Outcome string

const (
	// OutcomePass: the score reached the pass threshold and no critical metric failed or
	// lacked data.
	OutcomePass Outcome = "Pass"
	// OutcomeMarginal: the score is between the marginal and the pass thresholds, or a
	// critical metric had no data: neither promote nor roll back without a person.
	OutcomeMarginal Outcome = "Marginal"
	// OutcomeFail: the score is under the marginal threshold, or a critical metric is High
	// or Low.
	OutcomeFail Outcome = "Fail"
)

// MetricClass is one metric's classification, as the Scorer weighs it.
type MetricClass struct {
	Name  string
	Group string
	// Weight is the metric's share within its group, relative to the others'; 0 means 1.
	Weight float64
	// Critical: a High or Low fails the run whatever the score, and NoData keeps it from
	// passing.
	Critical bool
	Class    Class
}

// Scorer turns metric classes into a 0-100 score and an Outcome.
type Scorer struct {
	// GroupWeights weighs the groups against each other (relative weights). Empty: every
	// group weighs the same. Otherwise every group of the metrics must be listed, so that a
	// misspelt group is an error rather than a weight nobody chose.
	GroupWeights map[string]float64
	// Marginal and Pass are the thresholds: a score under Marginal fails, one at or above
	// Pass passes, one between is marginal. 0 <= Marginal <= Pass <= 100.
	Marginal, Pass float64
}

// GroupScore is one group's part of a Scorecard.
type GroupScore struct {
	Name string
	// Score is 100 times the weight of the group's passing metrics over the weight of all
	// of them, NoData included.
	Score float64
	// Weight is the group's share of the total score, from 0 to 1.
	Weight                       float64
	Pass, High, Low, NoData, All int
}

// Scorecard is the Scorer's result.
type Scorecard struct {
	Score   float64
	Outcome Outcome
	// Reason says in words why; for display, never to branch on.
	Reason string
	Groups []GroupScore
}

// Score weighs the metrics' classes. Each group scores the weighted share of its metrics
// that passed, a NoData metric counting as not passed; the run's score is the groups'
// weighted mean. It returns an error for an invalid Scorer, no metrics, a negative or
// non-finite weight, weights whose sum overflows, an unknown class, or a group with no
// weight.
func (s Scorer) Score(metrics []MetricClass) (Scorecard, error) {
	if err := s.validate(); err != nil {
		return Scorecard{}, err
	}
	if len(metrics) == 0 {
		return Scorecard{}, fmt.Errorf("stats: no metrics to score")
	}
	type acc struct {
		g          GroupScore
		pass, all  float64
		groupWeigh float64
	}
	groups := map[string]*acc{}
	var critFail, critNoData []string
	for _, m := range metrics {
		w := m.Weight
		if w == 0 {
			w = 1
		}
		if !(w > 0) || math.IsInf(w, 0) {
			return Scorecard{}, fmt.Errorf("stats: metric %q has weight %v; a weight is a finite number above 0 (or 0 for 1)", m.Name, m.Weight)
		}
		a := groups[m.Group]
		if a == nil {
			gw := 1.0
			if len(s.GroupWeights) > 0 {
				var ok bool
				if gw, ok = s.GroupWeights[m.Group]; !ok {
					return Scorecard{}, fmt.Errorf("stats: metric %q is in group %q, which has no weight", m.Name, m.Group)
				}
			}
			a = &acc{g: GroupScore{Name: m.Group}, groupWeigh: gw}
			groups[m.Group] = a
		}
		a.all += w
		a.g.All++
		switch m.Class {
		case ClassPass:
			a.pass += w
			a.g.Pass++
		case ClassHigh, ClassLow:
			if m.Class == ClassHigh {
				a.g.High++
			} else {
				a.g.Low++
			}
			if m.Critical {
				critFail = append(critFail, fmt.Sprintf("%s (%s)", m.Name, m.Class))
			}
		case ClassNoData:
			a.g.NoData++
			if m.Critical {
				critNoData = append(critNoData, m.Name)
			}
		default:
			return Scorecard{}, fmt.Errorf("stats: metric %q has unknown class %q", m.Name, m.Class)
		}
	}
	var total float64
	for _, a := range groups {
		total += a.groupWeigh
	}
	if total == 0 {
		return Scorecard{}, fmt.Errorf("stats: the metrics' groups all weigh 0")
	}
	if math.IsInf(total, 0) {
		return Scorecard{}, fmt.Errorf("stats: the groups' weights add up to more than a float64 holds; use smaller weights")
	}
	var sc Scorecard
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		a := groups[name]
		if math.IsInf(a.all, 0) {
			return Scorecard{}, fmt.Errorf("stats: the weights of group %q add up to more than a float64 holds; use smaller weights", name)
		}
		a.g.Score = 100 * a.pass / a.all
		a.g.Weight = a.groupWeigh / total
		sc.Score += a.g.Weight * a.g.Score
		sc.Groups = append(sc.Groups, a.g)
	}
	if math.IsNaN(sc.Score) || math.IsInf(sc.Score, 0) {
		// Unreachable with finite weights that add up; never a score to compare.
		return Scorecard{}, fmt.Errorf("stats: the score is %v, not a number to judge", sc.Score)
	}
	sc.Score = math.Min(100, sc.Score) // rounding of the weighted mean
	switch {
	case len(critFail) > 0:
		sc.Outcome = OutcomeFail
		sc.Reason = fmt.Sprintf("critical metric %s failed (score %.1f)", strings.Join(critFail, ", "), sc.Score)
	case sc.Score < s.Marginal:
		sc.Outcome = OutcomeFail
		sc.Reason = fmt.Sprintf("score %.1f is under the marginal threshold %g", sc.Score, s.Marginal)
	case len(critNoData) > 0:
		sc.Outcome = OutcomeMarginal
		sc.Reason = fmt.Sprintf("critical metric %s has no data (score %.1f)", strings.Join(critNoData, ", "), sc.Score)
	case sc.Score < s.Pass:
		sc.Outcome = OutcomeMarginal
		sc.Reason = fmt.Sprintf("score %.1f is under the pass threshold %g", sc.Score, s.Pass)
	default:
		sc.Outcome = OutcomePass
		sc.Reason = fmt.Sprintf("score %.1f reaches the pass threshold %g", sc.Score, s.Pass)
	}
	return sc, nil
}

func (s Scorer) validate() error {
	if !(0 <= s.Marginal && s.Marginal <= s.Pass && s.Pass <= 100) {
		return fmt.Errorf("stats: thresholds marginal %v and pass %v are not 0 <= marginal <= pass <= 100", s.Marginal, s.Pass)
	}
	for g, w := range s.GroupWeights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("stats: group %q has weight %v; a weight is a finite number at least 0", g, w)
		}
	}
	return nil
}
