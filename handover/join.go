package handover

import "sync"

// Join returns one Platform for several (a server's environments each have their own): its
// Handover holds each in turn and, when one fails, resumes those it held and returns the
// error, so that a failed hand-over leaves every platform as it was; Resume resumes each;
// Settled is closed once each one's is. The platforms are those of fn, asked at each call,
// so that the set may change between hand-overs.
func Join(fn func() []Platform) Platform { return joined(fn) }

type joined func() []Platform

func (j joined) Handover() error {
	var held []Platform
	for _, p := range j() {
		if err := p.Handover(); err != nil {
			for _, h := range held {
				h.Resume()
			}
			return err
		}
		held = append(held, p)
	}
	return nil
}

func (j joined) Resume() {
	for _, p := range j() {
		p.Resume()
	}
}

func (j joined) Settled() <-chan struct{} {
	ps := j()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func(c <-chan struct{}) { defer wg.Done(); <-c }(p.Settled())
	}
	go func() { wg.Wait(); close(done) }()
	return done
}
