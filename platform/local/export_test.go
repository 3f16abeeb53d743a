package local

// HeldBack reports how many instances wait for p's hold to end before they start (or stop)
// a process: a test waits for it instead of sleeping while a held platform might act.
func (p *Platform) HeldBack() int {
	h := &p.holdState
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting
}

// Passes reports how many passes app's supervisor has finished (0 for an unknown app): a
// test waits for a pass that began after an Apply instead of sleeping.
func (p *Platform) Passes(app string) uint64 {
	if a := p.lookup(app); a != nil {
		return a.passes.Load()
	}
	return 0
}
