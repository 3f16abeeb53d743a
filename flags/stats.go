package flags

import (
	"maps"
	"sync"
	"sync/atomic"
)

// maxStatsFlags bounds how many flag keys Stats tracks, so that a stream of unknown keys
// cannot grow it without limit.
const maxStatsFlags = 1 << 16

// Stats counts evaluations per flag and variant in memory, for finding stale flags without a
// write per evaluation: the evaluation path calls Record, and a writer calls Drain every few
// seconds and stores the counts in one batch. Record takes no lock once a flag and variant
// have been seen; it is safe for concurrent use. The zero Stats is ready to use.
type Stats struct {
	mu    sync.Mutex // serialises adding a flag or a variant
	flags atomic.Pointer[map[string]*flagCount]
}

type flagCount struct {
	variants atomic.Pointer[[]*variantCount]
}

type variantCount struct {
	name string
	n    atomic.Int64
}

// Record counts one evaluation of flag key that served variant ("" when it served none:
// disabled, the code default, an error). Callers should record only flags that exist.
func (s *Stats) Record(key, variant string) {
	if m := s.flags.Load(); m != nil {
		if f := (*m)[key]; f != nil {
			if vs := f.variants.Load(); vs != nil {
				for _, v := range *vs {
					if v.name == variant {
						v.n.Add(1)
						return
					}
				}
			}
		}
	}
	s.add(key, variant)
}

// add records an evaluation of a flag or variant not seen before.
func (s *Stats) add(key, variant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m map[string]*flagCount
	if p := s.flags.Load(); p != nil {
		m = *p
	}
	f := m[key]
	if f == nil {
		if len(m) >= maxStatsFlags {
			return
		}
		f = &flagCount{}
		next := maps.Clone(m)
		if next == nil {
			next = map[string]*flagCount{}
		}
		next[key] = f
		s.flags.Store(&next)
	}
	var vs []*variantCount
	if p := f.variants.Load(); p != nil {
		vs = *p
	}
	for _, v := range vs {
		if v.name == variant {
			v.n.Add(1)
			return
		}
	}
	v := &variantCount{name: variant}
	v.n.Store(1)
	next := append(append(make([]*variantCount, 0, len(vs)+1), vs...), v)
	f.variants.Store(&next)
}

// Drain returns the evaluations counted since the last Drain, by flag key and variant, and
// starts counting again from zero. Flags without evaluations since are left out.
func (s *Stats) Drain() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	p := s.flags.Load()
	if p == nil {
		return out
	}
	for key, f := range *p {
		vs := f.variants.Load()
		if vs == nil {
			continue
		}
		for _, v := range *vs {
			if n := v.n.Swap(0); n > 0 {
				if out[key] == nil {
					out[key] = map[string]int64{}
				}
				out[key][v.name] = n
			}
		}
	}
	return out
}
