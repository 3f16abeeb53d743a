package sqlite

import (
	"context"
	"runtime"
	"slices"

	"slipway.dev/slipway"
)

// maxBatch bounds how many Changes share one transaction, and so how long the Change
// that arrived first waits for the ones that arrived after it.
const maxBatch = 128

// pending is one Commit waiting for its Change to be written. res and err are set by the
// batch that wrote it, before done is closed.
type pending struct {
	c    *slipway.Change
	res  committed
	err  error
	done chan struct{}
}

// enqueue writes c with group commit and returns when it is written or has failed.
//
// The write connection does one transaction at a time. While one runs, other Commits
// queue up; when it ends, one waiting Commit becomes the leader and writes up to maxBatch
// queued Changes in a single transaction, each in its own savepoint. Under load this
// writes the shared pages (the events table, its indexes) and syncs the log once per
// batch instead of once per Change; alone, a Commit pays one ordinary transaction.
// The leader is a caller; only checkpoints run in the background (checkpoint.go).
func (s *Store) enqueue(ctx context.Context, c *slipway.Change) (*pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, internal("commit", err)
	}
	p := &pending{c: c, done: make(chan struct{})}
	s.qmu.Lock()
	s.queue = append(s.queue, p)
	s.qmu.Unlock()
	for {
		select {
		case <-p.done:
			return p, nil
		case s.wlock <- struct{}{}:
			s.lead()
			<-s.wlock
		case <-ctx.Done():
			if s.dequeue(p) {
				return nil, internal("commit", ctx.Err())
			}
			// A leader holds p and finishes it without waiting for anything else.
			<-p.done
			return p, nil
		}
	}
}

// dequeue removes p from the queue and reports whether it was still there.
func (s *Store) dequeue(p *pending) bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	i := slices.Index(s.queue, p)
	if i < 0 {
		return false
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	return true
}

// lead writes one batch from the head of the queue. The caller holds wlock.
func (s *Store) lead() {
	// Let the goroutines that are ready to run go first: under load some of them are about
	// to Commit and join this batch, instead of waiting for the next (a transaction's fixed
	// cost is about two changes'). With nothing else to run this returns at once.
	runtime.Gosched()
	s.qmu.Lock()
	n := min(len(s.queue), maxBatch)
	batch := slices.Clone(s.queue[:n])
	s.queue = slices.Delete(s.queue, 0, n)
	s.qmu.Unlock()
	if n > 0 {
		s.writeBatch(batch)
	}
}

// writeBatch writes batch in one transaction and closes every pending's done. A Change
// that fails with a domain error (ECONFLICT, ENOTFOUND, ...) is rolled back to its
// savepoint and the others go on; an unexpected database error rolls back the whole
// transaction, fails the Change that met it, and writes the others again without it.
func (s *Store) writeBatch(batch []*pending) {
	all := batch
	defer func() {
		for _, p := range all {
			close(p.done)
		}
	}()
	// The batch serves several callers, so no one caller's ctx may cut it short; each
	// caller's ctx was checked before its Change was picked up.
	ctx := context.Background()
	for len(batch) > 0 {
		culprit, err := s.tryBatch(ctx, batch)
		if culprit < 0 {
			if err != nil {
				for _, p := range batch {
					if p.err == nil {
						p.err = err
					}
				}
			}
			return
		}
		// Run the rest again in a fresh transaction; culprit keeps its error.
		rest := make([]*pending, 0, len(batch)-1)
		for i, p := range batch {
			if i != culprit {
				p.res, p.err = committed{}, nil
				rest = append(rest, p)
			}
		}
		batch = rest
	}
}

// tryBatch runs batch in one transaction. It returns the index of a Change that met an
// unexpected database error (after rolling back everything), or -1 and the error, if any,
// that failed the transaction as a whole.
func (s *Store) tryBatch(ctx context.Context, batch []*pending) (culprit int, err error) {
	ws := &s.ws
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return -1, internal("commit: begin", err)
	}
	tx := newWtx(ctx, sqlTx)
	ok := 0
	for i, p := range batch {
		if len(batch) == 1 {
			p.res, p.err = s.write(ctx, tx, p.c)
		} else {
			if _, err := tx.stmt(ws.savepoint).ExecContext(ctx); err != nil {
				_ = tx.Rollback()
				p.err = internal("commit: savepoint", err)
				return i, nil
			}
			p.res, p.err = s.write(ctx, tx, p.c)
			if p.err != nil && slipway.ErrorCode(p.err) != slipway.EINTERNAL {
				if _, err := tx.stmt(ws.rollbackTo).ExecContext(ctx); err != nil {
					_ = tx.Rollback()
					return -1, internal("commit: rollback to savepoint", err)
				}
			}
			if p.err == nil || slipway.ErrorCode(p.err) != slipway.EINTERNAL {
				if _, err := tx.stmt(ws.release).ExecContext(ctx); err != nil {
					_ = tx.Rollback()
					return -1, internal("commit: release savepoint", err)
				}
			}
		}
		if slipway.ErrorCode(p.err) == slipway.EINTERNAL {
			_ = tx.Rollback()
			return i, nil
		}
		if p.err == nil {
			ok++
		}
	}
	if ok == 0 {
		_ = tx.Rollback()
		return -1, nil
	}
	if err := tx.Commit(); err != nil {
		return -1, internal("commit", err)
	}
	n := 0
	for _, p := range batch {
		if p.err == nil {
			n += records(p.c)
		}
	}
	s.wrote(n)
	return -1, nil
}
