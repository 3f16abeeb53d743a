// Package sqlite is slipway's store: an embedded SQLite file (modernc.org/sqlite, no cgo)
// that implements slipway.Store.
//
// Start reading at Open (this file), then Commit (commit.go), which writes a whole
// slipway.Change in one transaction with optimistic versions, group commit (batch.go),
// checkpoints (checkpoint.go) and the readers (read.go). The schema lives in migrations/,
// applied by migrate (migrate.go).
//
// The Store keeps two connection pools on the same file: one write connection, which
// serialises every Commit (concurrent Commits share a transaction, each in its own
// savepoint), and a pool of read-only connections, so that reads never wait behind a
// write (the file is in WAL mode); a third connection runs checkpoints. Each record is kept whole as JSON beside the columns
// that queries filter and sort on. Time columns hold RFC 3339 UTC text with nanoseconds,
// so a time reads back as the same instant, in UTC. The store enforces versions and keys;
// business rules belong to the engine.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite"
	sqlitelib "modernc.org/sqlite/lib"

	"slipway.dev/slipway"
)

var _ slipway.Store = (*Store)(nil)

// busyTimeoutMillis is how long a connection waits for a lock held by another process
// (another slipway on the same file) before it fails with SQLITE_BUSY.
const busyTimeoutMillis = 10000

// minReaders is the least number of read connections kept open.
const minReaders = 8

// Store is slipway's state in one SQLite file. It is safe for concurrent use.
type Store struct {
	path string
	now  func() time.Time

	// wlock (a one-slot semaphore) is held by the Commit that leads a batch; w has a
	// single connection. queue holds the Commits waiting, under qmu.
	wlock chan struct{}
	qmu   sync.Mutex
	queue []*pending
	w     *sql.DB
	r     *sql.DB

	// ckpt is the connection checkpoints run on (checkpoint.go); checkpointing says one
	// runs, checkpoints waits for it, sinceCheckpoint counts the records written since the
	// last one began, and maxLog is maxLogFrames (tests lower it).
	ckpt            *sql.DB
	maxLog          int
	closing         chan struct{} // closed when Close begins
	closeOnce       sync.Once
	checkpointing   atomic.Bool
	checkpoints     sync.WaitGroup
	sinceCheckpoint atomic.Int64

	ws writeStmts
	rs readStmts
}

// Open opens the store in the SQLite file at path, creating the file if needed, and applies
// the schema migrations it lacks. now is the clock for the times the store itself records
// (migrations applied, events committed without a time); nil means time.Now.
func Open(path string, now func() time.Time) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsRune(path, '?') {
		return nil, slipway.Errorf(slipway.EINVALID, "sqlite: %q is not a usable database file path", path)
	}
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, now: now, wlock: make(chan struct{}, 1), maxLog: maxLogFrames,
		closing: make(chan struct{})}

	w, err := sql.Open("sqlite", path+"?_txlock=immediate"+
		fmt.Sprintf("&_busy_timeout=%d", busyTimeoutMillis)+
		"&_foreign_keys=1&_journal_mode=WAL&_synchronous=NORMAL"+
		// The store checkpoints on a connection of its own (checkpoint.go).
		"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, internal("open "+path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w = w

	ctx := context.Background()
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, internal("open "+path, err)
	}
	if err := check(ctx, w, path); err != nil {
		_ = w.Close()
		return nil, err
	}
	if err := migrate(ctx, w, migrationFS, now); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", path+
		fmt.Sprintf("?_busy_timeout=%d", busyTimeoutMillis)+
		"&_foreign_keys=1&_query_only=1")
	if err != nil {
		_ = w.Close()
		return nil, internal("open "+path, err)
	}
	n := max(minReaders, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r

	if s.ckpt, err = openCheckpointer(path); err != nil {
		_ = s.Close()
		return nil, err
	}

	if err := s.ws.prepare(ctx, w); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := s.rs.prepare(ctx, r); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// Path returns the file the store keeps its state in.
func (s *Store) Path() string { return s.path }

// Close closes the store's connections, after the Commit in progress, if any. The store
// must not be used afterwards.
func (s *Store) Close() error {
	// A checkpoint waiting for the write lock gives up once closing is closed.
	s.closeOnce.Do(func() { close(s.closing) })
	s.wlock <- struct{}{}
	defer func() { <-s.wlock }()
	s.checkpoints.Wait()
	var errs []error
	errs = append(errs, s.ws.close()...)
	errs = append(errs, s.rs.close()...)
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.Close())
	}
	if s.w != nil {
		// PRAGMA optimize keeps the query planner's statistics current; it is cheap when
		// nothing changed.
		_, _ = s.w.ExecContext(context.Background(), "PRAGMA optimize")
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return internal("close "+s.path, err)
	}
	return nil
}

// prepareAll prepares each query into its *sql.Stmt.
func prepareAll(ctx context.Context, db *sql.DB, stmts map[**sql.Stmt]string) error {
	for dst, q := range stmts {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return internal("prepare "+firstLine(q), err)
		}
		*dst = st
	}
	return nil
}

// closeAll closes the prepared statements that are set.
func closeAll(stmts ...*sql.Stmt) []error {
	var errs []error
	for _, st := range stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errs
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i >= 0 {
		q = q[:i]
	}
	return q
}

// internal wraps an unexpected database error: the result carries EINTERNAL for
// slipway.ErrorCode and still unwraps to err (context.Canceled, for one).
//
// A failure the operator can fix (a full disk, a read-only file or disk, an I/O error)
// carries EUNAVAILABLE instead, with a message that says which.
func internal(op string, err error) error {
	var e *slipway.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if msg := unavailable(err); msg != "" {
		return fmt.Errorf("%w: %w", slipway.Errorf(slipway.EUNAVAILABLE, "the store cannot write: %s", msg), err)
	}
	return fmt.Errorf("%w: %w", slipway.Errorf(slipway.EINTERNAL, "sqlite: %s failed", op), err)
}

// unavailable says in words why the store cannot write, for the errors an operator can fix;
// "" for any other error.
func unavailable(err error) string {
	switch sqliteCode(err) & 0xff {
	case sqlitelib.SQLITE_FULL:
		return "the disk is full"
	case sqlitelib.SQLITE_READONLY:
		return "its file or disk is read-only"
	case sqlitelib.SQLITE_IOERR:
		return "the disk reported an I/O error"
	case sqlitelib.SQLITE_CANTOPEN:
		return "its file cannot be opened"
	}
	return ""
}

// sqliteCode returns the extended SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var e *sqlite3.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isForeignKey reports whether err is a foreign key constraint failure.
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlitelib.SQLITE_CONSTRAINT_FOREIGNKEY
}

// notFound returns an ENOTFOUND error for the record kind and key.
func notFound(kind, key string) error {
	return slipway.Errorf(slipway.ENOTFOUND, "%s %q not found", kind, key)
}

// formatTime renders t for a time column: RFC 3339 with nanoseconds, in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseTime reads a time column written by formatTime.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: %w", s, err)
	}
	return t, nil
}

// unixNanos renders t as a sortable integer; the zero time is 0.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
