package delivery

import (
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

func TestWindowGate(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	office := slipway.Stage{Windows: []slipway.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00", TimeZone: "Europe/Paris"}}}
	night := slipway.Stage{Windows: []slipway.Window{{Start: "22:00", End: "02:00"}}}
	at := func(loc *time.Location, s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name   string
		st     slipway.Stage
		now    time.Time
		closed bool
		until  time.Time
		words  string
	}{
		{"inside office hours", office, at(paris, "2026-12-07 10:00"), false, time.Time{}, ""},
		{"at the opening minute", office, at(paris, "2026-12-07 09:00"), false, time.Time{}, ""},
		{"at the closing minute", office, at(paris, "2026-12-07 17:00"), true, at(paris, "2026-12-08 09:00"), "outside deploy windows until Tue 09:00 Europe/Paris"},
		{"friday evening waits for monday", office, at(paris, "2026-12-11 18:30"), true, at(paris, "2026-12-14 09:00"), "until Mon 09:00 Europe/Paris"},
		{"saturday", office, at(paris, "2026-12-12 11:00"), true, at(paris, "2026-12-14 09:00"), "until Mon 09:00"},
		{"across the spring DST change", office, at(paris, "2027-03-27 12:00"), true, at(paris, "2027-03-29 09:00"), "until Mon 09:00"},
		{"window spanning midnight, after midnight", night, at(time.UTC, "2026-12-08 01:30"), false, time.Time{}, ""},
		{"window spanning midnight, before it opens", night, at(time.UTC, "2026-12-08 12:00"), true, at(time.UTC, "2026-12-08 22:00"), "until Tue 22:00 UTC"},
		{"no windows: always open", slipway.Stage{}, at(time.UTC, "2026-12-08 12:00"), false, time.Time{}, ""},
	} {
		g, closed := windowGate(tc.st, tc.now)
		if closed != tc.closed || !g.until.Equal(tc.until) || (tc.words != "" && !strings.Contains(g.waiting, tc.words)) {
			t.Errorf("%s: closed %v until %v %q; want %v until %v %q", tc.name, closed, g.until, g.waiting, tc.closed, tc.until, tc.words)
		}
	}
}

func TestFreezeGate(t *testing.T) {
	t0 := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	st := slipway.Stage{Freezes: []slipway.Freeze{
		{From: t0, To: t0.Add(24 * time.Hour), Reason: "holidays"},
		{From: t0.Add(24 * time.Hour), To: t0.Add(72 * time.Hour)}, // touches the first: one freeze
		{From: t0.Add(100 * time.Hour), To: t0.Add(110 * time.Hour)},
	}}
	if _, closed := freezeGate(st, t0.Add(-time.Second)); closed {
		t.Error("closed before the freeze")
	}
	g, closed := freezeGate(st, t0.Add(time.Hour))
	if !closed || !g.until.Equal(t0.Add(72*time.Hour)) || !strings.Contains(g.waiting, "freeze until Wed 2026-12-23 00:00 UTC (holidays)") {
		t.Errorf("in the freeze: %v until %v %q", closed, g.until, g.waiting)
	}
	if _, closed := freezeGate(st, t0.Add(72*time.Hour)); closed {
		t.Error("closed at the freeze's end")
	}
	if g, closed := freezeGate(st, t0.Add(105*time.Hour)); !closed || !g.until.Equal(t0.Add(110*time.Hour)) {
		t.Errorf("in the second freeze: %v until %v", closed, g.until)
	}
}
