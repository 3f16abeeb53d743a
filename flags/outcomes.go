package flags

import (
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// OutcomeSeconds is how far back Outcomes can look: one count per second for ten minutes.
const OutcomeSeconds = 600

// Limits that keep Outcomes bounded whatever apps report.
const (
	// MaxOutcomeCount is the largest count one report may carry.
	MaxOutcomeCount = 1 << 20
	// maxOutcomeSeries bounds the (flag, variant) pairs tracked.
	maxOutcomeSeries = 1 << 14
	// maxOutcomeNames bounds the outcome names tracked per flag variant.
	maxOutcomeNames = 16
)

// outcomeName is what an outcome may be called.
var outcomeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.\-]{0,62}$`)

// Outcomes counts what apps report about the variants they were served (errors, successes,
// conversions), per flag, variant and outcome, in rings of per-second counts like the
// proxy's request metrics. Record takes no lock once a flag variant and outcome have been
// seen; Window sums a recent period. It is safe for concurrent use.
type Outcomes struct {
	now    func() time.Time
	mu     sync.Mutex // serialises adding a series or an outcome name
	series sync.Map   // outcomeKey -> *outcomeSeries
	n      int        // series added, guarded by mu
}

type outcomeKey struct{ flag, variant string }

// outcomeSeries holds a variant's rings: every outcome together, and each by name.
type outcomeSeries struct {
	all   countRing
	names atomic.Pointer[[]*namedRing]
}

type namedRing struct {
	name string
	ring countRing
}

// NewOutcomes returns empty Outcomes reading the clock now (time.Now when nil).
func NewOutcomes(now func() time.Time) *Outcomes {
	if now == nil {
		now = time.Now
	}
	return &Outcomes{now: now}
}

// CheckOutcome returns an error saying what is wrong with a reported outcome name and count.
func CheckOutcome(outcome string, count int64) error {
	switch {
	case !outcomeName.MatchString(outcome):
		return fmt.Errorf("outcome %q is not a name; use lower-case letters, digits, '_', '-' and '.', like error or conversion", outcome)
	case count < 0 || count > MaxOutcomeCount:
		return fmt.Errorf("count %d is out of range; use 1 to %d", count, MaxOutcomeCount)
	}
	return nil
}

// Record counts n occurrences of outcome for flag's variant now. It reports false, counting
// nothing, when the name or count fails CheckOutcome or when a limit on the flag variants or
// outcome names tracked is reached.
func (o *Outcomes) Record(flag, variant, outcome string, n int64) bool {
	if n == 0 {
		n = 1
	}
	if CheckOutcome(outcome, n) != nil {
		return false
	}
	s, r := o.lookup(flag, variant, outcome)
	if r == nil {
		return false
	}
	sec := o.now().Unix()
	s.all.add(sec, n)
	r.add(sec, n)
	return true
}

// lookup returns the series of flag's variant and the ring of outcome, adding them when new
// (nil when a limit is reached).
func (o *Outcomes) lookup(flag, variant, outcome string) (*outcomeSeries, *countRing) {
	k := outcomeKey{flag, variant}
	if v, ok := o.series.Load(k); ok {
		s := v.(*outcomeSeries)
		if r := s.find(outcome); r != nil {
			return s, r
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var s *outcomeSeries
	if v, ok := o.series.Load(k); ok {
		s = v.(*outcomeSeries)
	} else {
		if o.n >= maxOutcomeSeries {
			return nil, nil
		}
		s = &outcomeSeries{}
		o.series.Store(k, s)
		o.n++
	}
	if r := s.find(outcome); r != nil {
		return s, r
	}
	var names []*namedRing
	if p := s.names.Load(); p != nil {
		names = *p
	}
	if len(names) >= maxOutcomeNames {
		return s, nil
	}
	nr := &namedRing{name: outcome}
	next := append(append(make([]*namedRing, 0, len(names)+1), names...), nr)
	s.names.Store(&next)
	return s, &nr.ring
}

func (s *outcomeSeries) find(outcome string) *countRing {
	if p := s.names.Load(); p != nil {
		for _, nr := range *p {
			if nr.name == outcome {
				return &nr.ring
			}
		}
	}
	return nil
}

// OutcomeWindow is what was reported for one flag variant over a recent period.
type OutcomeWindow struct {
	// Total counts every outcome reported; Counts each by name.
	Total  int64            `json:"total"`
	Counts map[string]int64 `json:"counts,omitempty"`
	// Since is the start of the window: it covers whole seconds from Since to now.
	Since time.Time `json:"since"`
}

// Rate is the share (0-1) of outcome among every outcome in w; 0 when w is empty.
func (w OutcomeWindow) Rate(outcome string) float64 {
	if w.Total == 0 {
		return 0
	}
	return float64(w.Counts[outcome]) / float64(w.Total)
}

// Window returns what was reported for flag's variant over the last d, rounded up to whole
// seconds and counting the current second; d is clamped to between one second and
// OutcomeSeconds.
func (o *Outcomes) Window(flag, variant string, d time.Duration) OutcomeWindow {
	n := int64((d + time.Second - 1) / time.Second)
	n = max(1, min(n, OutcomeSeconds))
	end := o.now().Unix()
	first := end - n + 1
	w := OutcomeWindow{Since: time.Unix(first, 0)}
	v, ok := o.series.Load(outcomeKey{flag, variant})
	if !ok {
		return w
	}
	s := v.(*outcomeSeries)
	w.Total = s.all.sum(first, end)
	if p := s.names.Load(); p != nil {
		w.Counts = make(map[string]int64, len(*p))
		for _, nr := range *p {
			if c := nr.ring.sum(first, end); c > 0 {
				w.Counts[nr.name] = c
			}
		}
	}
	return w
}

// countRing holds OutcomeSeconds per-second counts. Each slot packs the second it belongs to
// (high 32 bits) with its count (low 32 bits), so a writer that finds an older second
// restarts the count with one compare-and-swap and a reader ignores counts of another lap.
type countRing struct {
	slots [OutcomeSeconds]atomic.Uint64
}

func (r *countRing) add(sec, n int64) {
	c := &r.slots[sec%OutcomeSeconds]
	tag := uint32(sec)
	for {
		v := c.Load()
		cur := uint64(0)
		if uint32(v>>32) == tag {
			cur = v & 0xffffffff
		}
		next := min(cur+uint64(n), 0xffffffff) // saturate rather than spill into the tag
		if c.CompareAndSwap(v, uint64(tag)<<32|next) {
			return
		}
	}
}

func (r *countRing) sum(first, end int64) int64 {
	var total int64
	for sec := first; sec <= end; sec++ {
		v := r.slots[sec%OutcomeSeconds].Load()
		if uint32(v>>32) == uint32(sec) {
			total += int64(v & 0xffffffff)
		}
	}
	return total
}
