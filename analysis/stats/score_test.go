package stats

import (
	"math"
	"strings"
	"testing"
)

func TestScorer_Score(t *testing.T) {
	s := Scorer{Marginal: 50, Pass: 75}
	for _, c := range []struct {
		name    string
		scorer  Scorer
		metrics []MetricClass
		score   float64
		outcome Outcome
		reason  string
	}{
		{
			name:    "all pass",
			scorer:  s,
			metrics: []MetricClass{{Name: "a", Class: ClassPass}, {Name: "b", Class: ClassPass}},
			score:   100, outcome: OutcomePass, reason: "reaches the pass threshold",
		},
		{
			// 3 of 4 pass: 75, exactly the pass threshold.
			name:   "at the pass threshold",
			scorer: s,
			metrics: []MetricClass{
				{Name: "a", Class: ClassPass}, {Name: "b", Class: ClassPass},
				{Name: "c", Class: ClassPass}, {Name: "d", Class: ClassHigh},
			},
			score: 75, outcome: OutcomePass,
		},
		{
			// NoData counts as not passed: 2 of 3, not 2 of 2.
			name:    "NoData counts against",
			scorer:  s,
			metrics: []MetricClass{{Name: "a", Class: ClassPass}, {Name: "b", Class: ClassPass}, {Name: "c", Class: ClassNoData}},
			score:   200.0 / 3, outcome: OutcomeMarginal, reason: "under the pass threshold 75",
		},
		{
			name:    "all NoData",
			scorer:  s,
			metrics: []MetricClass{{Name: "a", Class: ClassNoData}, {Name: "b", Class: ClassNoData}},
			score:   0, outcome: OutcomeFail, reason: "under the marginal threshold 50",
		},
		{
			// Group latency: a (weight 3) passes, b (1) is Low: 75. Group errors: c fails: 0.
			// Groups weigh 2 and 1: (2*75 + 1*0) / 3 = 50, exactly marginal.
			name:   "weights and groups",
			scorer: Scorer{Marginal: 50, Pass: 75, GroupWeights: map[string]float64{"latency": 2, "errors": 1}},
			metrics: []MetricClass{
				{Name: "a", Group: "latency", Weight: 3, Class: ClassPass},
				{Name: "b", Group: "latency", Weight: 1, Class: ClassLow},
				{Name: "c", Group: "errors", Class: ClassHigh},
			},
			score: 50, outcome: OutcomeMarginal,
		},
		{
			name:   "a critical metric High fails a high score",
			scorer: s,
			metrics: []MetricClass{
				{Name: "a", Class: ClassPass}, {Name: "b", Class: ClassPass}, {Name: "c", Class: ClassPass},
				{Name: "d", Class: ClassPass}, {Name: "e", Critical: true, Class: ClassHigh},
			},
			score: 80, outcome: OutcomeFail, reason: "critical metric e (High) failed",
		},
		{
			name:   "a critical metric without data cannot pass",
			scorer: s,
			metrics: []MetricClass{
				{Name: "a", Class: ClassPass}, {Name: "b", Class: ClassPass}, {Name: "c", Class: ClassPass},
				{Name: "d", Class: ClassPass}, {Name: "e", Critical: true, Class: ClassNoData},
			},
			score: 80, outcome: OutcomeMarginal, reason: "critical metric e has no data",
		},
		{
			name:    "a critical metric without data, score under marginal",
			scorer:  s,
			metrics: []MetricClass{{Name: "a", Class: ClassHigh}, {Name: "e", Critical: true, Class: ClassNoData}},
			score:   0, outcome: OutcomeFail,
		},
		{
			name:    "a group weighing 0 does not count",
			scorer:  Scorer{Marginal: 50, Pass: 75, GroupWeights: map[string]float64{"main": 1, "shadow": 0}},
			metrics: []MetricClass{{Name: "a", Group: "main", Class: ClassPass}, {Name: "b", Group: "shadow", Class: ClassHigh}},
			score:   100, outcome: OutcomePass,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.scorer.Score(c.metrics)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.Score-c.score) > 1e-9 || got.Outcome != c.outcome || !strings.Contains(got.Reason, c.reason) {
				t.Errorf("score %v %s %q, want %v %s saying %q", got.Score, got.Outcome, got.Reason, c.score, c.outcome, c.reason)
			}
			var n int
			for _, g := range got.Groups {
				n += g.All
				if g.Pass+g.High+g.Low+g.NoData != g.All {
					t.Errorf("group %+v: classes do not add up", g)
				}
			}
			if n != len(c.metrics) {
				t.Errorf("groups hold %d metrics, want %d", n, len(c.metrics))
			}
		})
	}
}

func TestScorer_Refuses(t *testing.T) {
	ok := []MetricClass{{Name: "a", Class: ClassPass}}
	for _, c := range []struct {
		name    string
		scorer  Scorer
		metrics []MetricClass
	}{
		{"no metrics", Scorer{Pass: 75}, nil},
		{"marginal above pass", Scorer{Marginal: 80, Pass: 75}, ok},
		{"pass above 100", Scorer{Pass: 101}, ok},
		{"negative marginal", Scorer{Marginal: -1}, ok},
		{"negative metric weight", Scorer{}, []MetricClass{{Name: "a", Weight: -1, Class: ClassPass}}},
		{"NaN metric weight", Scorer{}, []MetricClass{{Name: "a", Weight: math.NaN(), Class: ClassPass}}},
		{"unknown class", Scorer{}, []MetricClass{{Name: "a", Class: "Fine"}}},
		{"group without a weight", Scorer{GroupWeights: map[string]float64{"latency": 1}}, []MetricClass{{Name: "a", Group: "latncy", Class: ClassPass}}},
		{"negative group weight", Scorer{GroupWeights: map[string]float64{"": -1}}, ok},
		{"every group weighs 0", Scorer{GroupWeights: map[string]float64{"": 0}}, ok},
	} {
		if got, err := c.scorer.Score(c.metrics); err == nil {
			t.Errorf("%s: accepted, %+v", c.name, got)
		}
	}
}

// TestScorer_HugeWeightsNeverPass: weights whose sums overflow make a group's score Inf/Inf,
// NaN, which is under no threshold; such a scorecard is refused, never a pass (two passing
// metrics and a failing one, each of weight 1e308, scored Pass).
func TestScorer_HugeWeightsNeverPass(t *testing.T) {
	for _, c := range []struct {
		name    string
		scorer  Scorer
		metrics []MetricClass
	}{
		{"metric weights", Scorer{Marginal: 50, Pass: 90}, []MetricClass{
			{Name: "a", Weight: 1e308, Class: ClassPass}, {Name: "b", Weight: 1e308, Class: ClassPass}, {Name: "c", Weight: 1e308, Class: ClassHigh}}},
		{"group weights", Scorer{Marginal: 50, Pass: 90, GroupWeights: map[string]float64{"x": 1e308, "y": 1e308}}, []MetricClass{
			{Name: "a", Group: "x", Class: ClassPass}, {Name: "b", Group: "y", Class: ClassHigh}}},
	} {
		got, err := c.scorer.Score(c.metrics)
		if err == nil {
			t.Errorf("%s: scored %v (%s), want an error: the weights overflow", c.name, got.Score, got.Outcome)
		}
	}
}
