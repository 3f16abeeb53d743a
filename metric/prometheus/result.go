package prometheus

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/common/model"

	"slipway.dev/slipway"
)

// maxSeriesNamed is how many series an error lists.
const maxSeriesNamed = 3

// series is one series of an answer: its labels and its values (one for an instant query,
// one per point for a range query).
type series struct {
	labels model.Metric
	values []float64
}

// value turns an answer into the measured number.
//
//   - A scalar is its value.
//   - A vector or a matrix without series is no data (the series does not exist, or has no
//     sample in the window).
//   - One series with one sample is that sample, whatever reduce says.
//   - More samples (many series, or a range query's points) need reduce: sum, avg, min and max
//     take every finite sample of every series; last takes the latest finite sample of the
//     only series. Without reduce, or with last over many series, the answer is an error
//     naming the series.
//   - NaN and infinities are no data: a lone sample that is one, or, for a reduction, every
//     sample (the others are left out of it).
//   - A string, and a native histogram sample, are errors: they are not a number to judge.
func value(answer any, reduce string) (float64, error) {
	var all []series
	switch a := answer.(type) {
	case *model.Scalar:
		return finite(float64(a.Value), "the scalar")
	case *model.String:
		return 0, fmt.Errorf("the query answered the string %q, not a number; query a number", a.Value)
	case model.Vector:
		for _, s := range a {
			if s.Histogram != nil {
				return 0, histogramError(s.Metric)
			}
			all = append(all, series{labels: s.Metric, values: []float64{float64(s.Value)}})
		}
	case model.Matrix:
		for _, s := range a {
			if len(s.Histograms) > 0 {
				return 0, histogramError(s.Metric)
			}
			vs := make([]float64, len(s.Values))
			for i, p := range s.Values {
				vs[i] = float64(p.Value)
			}
			all = append(all, series{labels: s.Metric, values: vs})
		}
	default:
		return 0, fmt.Errorf("the query answered %T, which is not a Prometheus result", answer)
	}
	samples := 0
	for _, s := range all {
		samples += len(s.values)
	}
	switch {
	case samples == 0:
		return 0, fmt.Errorf("the query answered no series: %w", slipway.ErrNoData)
	case samples == 1:
		return finite(all[0].values[0], "the only sample")
	case reduce == "":
		if len(all) == 1 {
			return 0, fmt.Errorf("the query answered %d samples of %s; set reduce to one of %s", samples, all[0].labels, strings.Join(slipway.Reductions(), ", "))
		}
		return 0, fmt.Errorf("the query answered %d series (%s); aggregate them in PromQL, like sum(...), or set reduce to one of %s",
			len(all), names(all), strings.Join(slipway.Reductions(), ", "))
	case reduce == slipway.ReduceLast:
		if len(all) > 1 {
			return 0, fmt.Errorf("reduce last takes the latest sample of one series, and the query answered %d (%s); aggregate them in PromQL, or reduce by sum, avg, min or max",
				len(all), names(all))
		}
		return last(all[0])
	}
	return reduceFinite(all, reduce, samples)
}

// finite returns v, or ErrNoData when v is NaN or an infinity (Prometheus answers NaN for
// 0/0, such as an error rate without requests).
func finite(v float64, what string) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s is %v, not a finite number: %w", what, v, slipway.ErrNoData)
	}
	return v, nil
}

// last returns the latest finite value of s.
func last(s series) (float64, error) {
	for _, v := range slices.Backward(s.values) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("all %d samples of %s are NaN or infinite: %w", len(s.values), s.labels, slipway.ErrNoData)
}

// reduceFinite reduces the finite values of every series by sum, avg, min or max.
func reduceFinite(all []series, reduce string, samples int) (float64, error) {
	var vals []float64
	for _, s := range all {
		for _, v := range s.values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				vals = append(vals, v)
			}
		}
	}
	if len(vals) == 0 {
		return 0, fmt.Errorf("all %d samples are NaN or infinite: %w", samples, slipway.ErrNoData)
	}
	switch reduce {
	case slipway.ReduceSum, slipway.ReduceAvg:
		sum := 0.0
		for _, v := range vals {
			sum += v
		}
		if reduce == slipway.ReduceAvg {
			sum /= float64(len(vals))
		}
		return finite(sum, "the "+reduce) // a sum of large values may overflow
	case slipway.ReduceMin:
		return slices.Min(vals), nil
	case slipway.ReduceMax:
		return slices.Max(vals), nil
	}
	return 0, fmt.Errorf("reduce %q is not one of %s", reduce, strings.Join(slipway.Reductions(), ", "))
}

// knownReduce reports whether r is one of slipway.Reductions.
func knownReduce(r string) bool { return slices.Contains(slipway.Reductions(), r) }

// names lists the first series' labels, for an error.
func names(all []series) string {
	var out []string
	for i, s := range all {
		if i == maxSeriesNamed {
			out = append(out, fmt.Sprintf("and %d more", len(all)-i))
			break
		}
		out = append(out, s.labels.String())
	}
	return strings.Join(out, ", ")
}

func histogramError(m model.Metric) error {
	return fmt.Errorf("series %s is a native histogram, not a number; reduce it in PromQL, like histogram_quantile(0.99, ...)", m)
}
