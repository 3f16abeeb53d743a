package slipway_test

import (
	"testing"
	"time"

	"slipway.dev/slipway"
)

func TestParseInsightsTime(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-03-01T01:00:00+01:00", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"30d", now.Add(-30 * 24 * time.Hour), true},
		{"2w", now.Add(-14 * 24 * time.Hour), true},
		{"12h", now.Add(-12 * time.Hour), true},
		{" 90m ", now.Add(-90 * time.Minute), true},
		{"0d", now, true},
		{"", time.Time{}, false},
		{"d", time.Time{}, false},
		{"-3d", time.Time{}, false},
		{"-1h", time.Time{}, false},
		{"1.5d", time.Time{}, false},
		{"99999d", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2026-03-01", time.Time{}, false},
	} {
		got, err := slipway.ParseInsightsTime(tc.in, now)
		if tc.ok != (err == nil) || !got.Equal(tc.want) {
			t.Errorf("ParseInsightsTime(%q) = %s, %v; want %s (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("ParseInsightsTime(%q): %v, want EINVALID", tc.in, err)
		}
	}
}

func TestEnvironment_Production(t *testing.T) {
	for labels, want := range map[string]bool{"production": true, "Production": false, "staging": false, "": false} {
		e := slipway.Environment{Name: "x"}
		if labels != "" {
			e.Labels = map[string]string{"tier": labels}
		}
		if e.Production() != want {
			t.Errorf("tier %q: production %v, want %v", labels, e.Production(), want)
		}
	}
}
