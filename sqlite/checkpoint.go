package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"slipway.dev/slipway"
)

// Checkpoints. In WAL mode every commit appends the pages it changed to the log, and a
// checkpoint copies them back into the database file so that the log can start over. SQLite
// checkpoints by itself in the commit that takes the log past 1000 pages, and that commit
// (with every Change batched into it) then waits for the copy and its two fsyncs: tens of
// milliseconds, which became the commit latency's tail under load. So the write connection
// does not checkpoint; the store checkpoints on a connection of its own, in a goroutine that
// a commit starts once checkpointEvery records were written since the last one. Writers go
// on meanwhile: a PASSIVE checkpoint takes no lock a writer needs. One runs at a time, and
// Close waits for it.
//
// The log starts over at the first write after a checkpoint that copied all of it. A
// checkpoint beside writers copies what was committed when it began, so under unbroken
// writes that may not happen for a while, and the log grows: once it holds maxLogFrames
// pages, the checkpoint copies the rest between two batches, holding the store's write lock
// (SQLite's own checkpoint would have held it throughout), and the log starts over. (A
// RESTART checkpoint would wait for the writer too, but by polling, and a writer that
// commits back to back starves it.) A checkpoint that fails leaves the log longer; nothing
// committed is lost, and the next one tries again.
const (
	checkpointEvery = 1000
	maxLogFrames    = 8192
)

// openCheckpointer opens the connection checkpoints run on.
func openCheckpointer(path string) (*sql.DB, error) {
	c, err := sql.Open("sqlite", path+fmt.Sprintf("?_busy_timeout=%d", busyTimeoutMillis))
	if err != nil {
		return nil, internal("open "+path, err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	return c, nil
}

// wrote counts n records just committed and starts a checkpoint when it is time and none
// runs. The caller holds wlock, so none starts once Close holds it.
func (s *Store) wrote(n int) {
	if s.sinceCheckpoint.Add(int64(n)) < checkpointEvery || !s.checkpointing.CompareAndSwap(false, true) {
		return
	}
	s.sinceCheckpoint.Store(0)
	s.checkpoints.Add(1)
	go func() {
		defer s.checkpoints.Done()
		defer s.checkpointing.Store(false)
		_, _ = s.checkpoint(context.Background())
	}()
}

// checkpoint copies the log into the database file. When the log has grown to maxLog pages,
// it copies the rest while holding the store's write lock, so that no Commit appends
// meanwhile and all of the log is copied: the next write starts it over. It returns the
// log's size in pages.
func (s *Store) checkpoint(ctx context.Context) (int, error) {
	logged, err := s.checkpointPassive(ctx)
	if err != nil || logged < s.maxLog {
		return logged, err
	}
	select {
	case s.wlock <- struct{}{}:
	case <-s.closing:
		return logged, nil
	}
	defer func() { <-s.wlock }()
	return s.checkpointPassive(ctx)
}

func (s *Store) checkpointPassive(ctx context.Context) (int, error) {
	var busy, logged, copied int
	if err := s.ckpt.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logged, &copied); err != nil {
		return 0, internal("checkpoint", err)
	}
	return logged, nil
}

// records counts the rows c writes: about the pages it adds to the log.
func records(c *slipway.Change) int {
	return len(c.Apps) + len(c.DeleteApps) + len(c.Templates) + len(c.DeleteTemplates) + len(c.Revisions) +
		len(c.Rollouts) + len(c.Runs) + len(c.Events) + len(c.FlagSets) + len(c.DeleteFlagSets)
}
