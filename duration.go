package slipway

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("30s", "1m30s") in files and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string, or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration must be a string like \"30s\": %w", err)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses a Go duration string ("500ms", "1m30s"); a bare number is seconds.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return Duration(n * float64(time.Second)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; use a number with a unit, like 30s, 5m or 1h30m", s)
	}
	return Duration(v), nil
}

// IntOrPercent is a count ("2") or a share of a total ("25%").
type IntOrPercent struct {
	Value   int  `json:"-"`
	Percent bool `json:"-"`
}

// Count returns an absolute count.
func Count(n int) *IntOrPercent { return &IntOrPercent{Value: n} }

// Percent returns a share of a total.
func Percent(p int) *IntOrPercent { return &IntOrPercent{Value: p, Percent: true} }

func (v IntOrPercent) String() string {
	if v.Percent {
		return strconv.Itoa(v.Value) + "%"
	}
	return strconv.Itoa(v.Value)
}

// Resolve returns v against total: a count as is, a percent of total rounded up or down.
func (v IntOrPercent) Resolve(total int, roundUp bool) int {
	if !v.Percent {
		return v.Value
	}
	n := v.Value * total
	if roundUp {
		return (n + 99) / 100
	}
	return n / 100
}

// MarshalJSON writes a count as a number and a percent as "N%".
func (v IntOrPercent) MarshalJSON() ([]byte, error) {
	if v.Percent {
		return json.Marshal(v.String())
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads a number or a string "N" or "N%".
func (v *IntOrPercent) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*v = IntOrPercent{Value: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a count like 1 or a percent like \"25%%\"")
	}
	p, err := ParseIntOrPercent(s)
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// ParseIntOrPercent parses "3" or "25%".
func ParseIntOrPercent(s string) (IntOrPercent, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil {
		return IntOrPercent{}, fmt.Errorf("%q must be a count like 1 or a percent like \"25%%\"", s)
	}
	return IntOrPercent{Value: n, Percent: pct}, nil
}
