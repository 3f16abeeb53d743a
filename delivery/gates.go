package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

// gate is the first closed gate of a stage: why, in words, and when to look again (zero:
// only when woken, as for an approval).
type gate struct {
	waiting string
	until   time.Time
}

// freezeGate returns the freeze in force at now, if any.
func freezeGate(st slipway.Stage, now time.Time) (gate, bool) {
	var end time.Time
	var reasons []string
	for _, f := range st.Freezes {
		if !now.Before(f.From) && now.Before(f.To) {
			if f.To.After(end) {
				end = f.To
			}
			if f.Reason != "" {
				reasons = append(reasons, f.Reason)
			}
		}
	}
	if end.IsZero() {
		return gate{}, false
	}
	// Freezes that touch or overlap the one in force extend it.
	for changed := true; changed; {
		changed = false
		for _, f := range st.Freezes {
			if !f.From.After(end) && f.To.After(end) {
				end, changed = f.To, true
			}
		}
	}
	msg := "freeze until " + end.UTC().Format("Mon 2006-01-02 15:04 MST")
	if len(reasons) > 0 {
		msg += " (" + strings.Join(reasons, "; ") + ")"
	}
	return gate{waiting: msg, until: end}, true
}

// windowGate returns, when the stage has windows and now is in none, when the next opens.
func windowGate(st slipway.Stage, now time.Time) (gate, bool) {
	if len(st.Windows) == 0 {
		return gate{}, false
	}
	var next time.Time
	var nextW slipway.Window
	for _, w := range st.Windows {
		open, opens := windowAt(w, now)
		if open {
			return gate{}, false
		}
		if !opens.IsZero() && (next.IsZero() || opens.Before(next)) {
			next, nextW = opens, w
		}
	}
	if next.IsZero() {
		return gate{waiting: "outside every deploy window"}, true
	}
	loc := location(nextW)
	return gate{waiting: "outside deploy windows until " + next.In(loc).Format("Mon 15:04") + " " + zoneName(nextW), until: next}, true
}

// windowAt reports whether w is open at now, and otherwise when it next opens (within two
// weeks; zero when never, which validation prevents).
func windowAt(w slipway.Window, now time.Time) (bool, time.Time) {
	loc := location(w)
	start, err1 := validate.ClockTime(w.Start)
	end, err2 := validate.ClockTime(w.End)
	if err1 != nil || err2 != nil {
		return false, time.Time{}
	}
	days := map[time.Weekday]bool{}
	for _, d := range w.Days {
		if wd, ok := validate.Weekday(d); ok {
			days[wd] = true
		}
	}
	allowed := func(d time.Weekday) bool { return len(days) == 0 || days[d] }
	local := now.In(loc)
	// A window opens on an allowed day at start and lasts until end (the next day's end
	// when end is before start). Look at the window that opened yesterday, today, and the
	// next fourteen days.
	length := end - start
	if length <= 0 {
		length += 24 * 60
	}
	for i := -1; i <= 14; i++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+i, 0, 0, 0, 0, loc)
		if !allowed(day.Weekday()) {
			continue
		}
		opens := time.Date(day.Year(), day.Month(), day.Day(), start/60, start%60, 0, 0, loc)
		closes := opens.Add(time.Duration(length) * time.Minute)
		if !now.Before(opens) && now.Before(closes) {
			return true, time.Time{}
		}
		if opens.After(now) {
			return false, opens
		}
	}
	return false, time.Time{}
}

func location(w slipway.Window) *time.Location {
	if w.TimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func zoneName(w slipway.Window) string {
	if w.TimeZone == "" {
		return "UTC"
	}
	return w.TimeZone
}

// budgetGate measures the stage's error budget: closed while it is spent (the error ratio
// at or above what the objective allows), and closed too when it cannot be measured — a
// gate without evidence never opens.
func (m *Manager) budgetGate(ctx context.Context, st slipway.Stage, fix bool) (gate, bool) {
	b := st.ErrorBudget
	if b == nil {
		return gate{}, false
	}
	now := m.cfg.Now()
	recheck := now.Add(m.cfg.GatePoll)
	spent, err := m.budgetSpent(ctx, b)
	if err != nil {
		return gate{waiting: "error budget unknown: " + slipway.ErrorMessage(err), until: recheck}, true
	}
	if spent < 100 {
		return gate{}, false
	}
	if fix {
		return gate{}, false
	}
	return gate{waiting: fmt.Sprintf("error budget %.0f%% spent (only fixes and rollbacks enter)", spent), until: recheck}, true
}

// budgetSpent returns the share of the budget spent, in percent: the measured error ratio
// over what the objective allows.
func (m *Manager) budgetSpent(ctx context.Context, b *slipway.ErrorBudget) (float64, error) {
	if m.cfg.Measure == nil {
		return 0, slipway.Errorf(slipway.EINVALID, "this server measures no error budget")
	}
	metric := b.Metric
	if metric.Name == "" {
		metric.Name = "error-budget"
	}
	v, err := m.cfg.Measure.Measure(ctx, metric)
	if err != nil {
		return 0, err
	}
	ratio, err := number(v)
	if err != nil {
		return 0, err
	}
	if ratio < 0 || ratio > 1 {
		return 0, slipway.Errorf(slipway.EINVALID, "the error ratio measured is %v; a ratio is 0 to 1", ratio)
	}
	return ratio / (1 - b.Objective/100) * 100, nil
}

// number reads a measured value as a finite number: a JSON number, or a string holding one
// (as Prometheus sends them).
func number(v any) (float64, error) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		p, err := x.Float64()
		if err != nil {
			return 0, slipway.Errorf(slipway.EINVALID, "%q is not a number", x)
		}
		f = p
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, slipway.Errorf(slipway.EINVALID, "%q is not a number", x)
		}
		f = p
	default:
		return 0, slipway.Errorf(slipway.EINVALID, "the measurement is %T, not a number", v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, slipway.Errorf(slipway.EINVALID, "the measurement is %v: no data", f)
	}
	return f, nil
}
