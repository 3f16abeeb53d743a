package ofrep

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per client IP.
type limiter struct {
	rate  float64 // tokens per second
	burst float64

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// sweepAt is the number of buckets above which full (idle) buckets are dropped.
const sweepAt = 4096

func newLimiter(rate float64, burst int) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes a token from ip's bucket. When none is left it returns false and the whole
// seconds until one will be.
func (l *limiter) allow(ip string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= sweepAt && now.Sub(l.lastSweep) > time.Second {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[ip] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := int(math.Ceil((1 - b.tokens) / l.rate))
	return max(wait, 1), false
}

// sweep drops the buckets that have refilled: they hold no state worth keeping.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for ip, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, ip)
		}
	}
}
