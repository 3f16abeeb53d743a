package local

// HeldBack reports how many instances wait for p's hold to end before they start (or stop)
// a process: a test waits for it instead of sleeping while a held platform might act.
func (p *Platform) HeldBack() int {
	h := &p.holdState
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting
}
