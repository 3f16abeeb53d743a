package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"slipway.dev/slipway"
)

// readStmts are the fixed queries of the readers, prepared on the read pool.
type readStmts struct {
	app, apps                 *sql.Stmt
	template, templates       *sql.Stmt
	revision, revisions       *sql.Stmt
	rollout, rollouts, active *sql.Stmt
	run, runs, flagRuns       *sql.Stmt
}

const (
	appCols      = `spec, stable, created_at, updated_at, version`
	revisionCols = `app, id, number, version, spec, created_at`
)

func (rs *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, map[**sql.Stmt]string{
		&rs.app:       `SELECT ` + appCols + ` FROM apps WHERE name = ?`,
		&rs.apps:      `SELECT ` + appCols + ` FROM apps ORDER BY name`,
		&rs.template:  `SELECT data FROM templates WHERE name = ?`,
		&rs.templates: `SELECT data FROM templates ORDER BY name`,
		&rs.revision:  `SELECT ` + revisionCols + ` FROM revisions WHERE app = ? AND id = ?`,
		&rs.revisions: `SELECT ` + revisionCols + ` FROM revisions WHERE app = ? ORDER BY number DESC`,
		&rs.rollout:   `SELECT data, version FROM rollouts WHERE id = ?`,
		&rs.rollouts:  `SELECT data, version FROM rollouts WHERE app = ? ORDER BY number DESC LIMIT ?`,
		&rs.active:    `SELECT data, version FROM rollouts WHERE active = 1 ORDER BY app, number`,
		&rs.run:       `SELECT data, version FROM analysis_runs WHERE id = ?`,
		&rs.runs:      `SELECT data, version FROM analysis_runs WHERE rollout = ? ORDER BY started_at, rowid`,
		&rs.flagRuns:  `SELECT data, version FROM analysis_runs WHERE flag = ? ORDER BY started_at, rowid`,
	})
}

func (rs *readStmts) close() []error {
	return closeAll(rs.app, rs.apps, rs.template, rs.templates, rs.revision, rs.revisions,
		rs.rollout, rs.rollouts, rs.active, rs.run, rs.runs, rs.flagRuns)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// App returns the app named name, or ENOTFOUND.
func (s *Store) App(ctx context.Context, name string) (slipway.AppState, error) {
	a, err := scanApp(s.rs.app.QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFound("app", name)
	}
	if err != nil {
		return a, internal("read app "+name, err)
	}
	return a, nil
}

// Apps returns every app, sorted by name.
func (s *Store) Apps(ctx context.Context) ([]slipway.AppState, error) {
	return queryAll(ctx, s.rs.apps, "read apps", scanApp)
}

func scanApp(sc scanner) (slipway.AppState, error) {
	var (
		a                slipway.AppState
		spec             []byte
		created, updated string
	)
	if err := sc.Scan(&spec, &a.Stable, &created, &updated, &a.Version); err != nil {
		return a, err
	}
	if err := json.Unmarshal(spec, &a.Spec); err != nil {
		return a, fmt.Errorf("decode app: %w", err)
	}
	var err error
	if a.CreatedAt, err = parseTime(created); err != nil {
		return a, err
	}
	if a.UpdatedAt, err = parseTime(updated); err != nil {
		return a, err
	}
	return a, nil
}

// Template returns the analysis template named name, or ENOTFOUND.
func (s *Store) Template(ctx context.Context, name string) (slipway.AnalysisTemplate, error) {
	t, err := scanJSON[slipway.AnalysisTemplate](s.rs.template.QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("analysis template", name)
	}
	if err != nil {
		return t, internal("read analysis template "+name, err)
	}
	return t, nil
}

// Templates returns every analysis template, sorted by name.
func (s *Store) Templates(ctx context.Context) ([]slipway.AnalysisTemplate, error) {
	return queryAll(ctx, s.rs.templates, "read analysis templates", scanJSON[slipway.AnalysisTemplate])
}

func scanJSON[T any](sc scanner) (T, error) {
	var (
		v    T
		data []byte
	)
	if err := sc.Scan(&data); err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}

// Revisions returns app's kept revisions, newest (highest Number) first; none for an
// unknown app.
func (s *Store) Revisions(ctx context.Context, app string) ([]slipway.Revision, error) {
	return queryAll(ctx, s.rs.revisions, "read revisions of "+app, scanRevision, app)
}

// Revision returns app's revision id, or ENOTFOUND.
func (s *Store) Revision(ctx context.Context, app, id string) (slipway.Revision, error) {
	r, err := scanRevision(s.rs.revision.QueryRowContext(ctx, app, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("revision", app+"/"+id)
	}
	if err != nil {
		return r, internal("read revision "+app+"/"+id, err)
	}
	return r, nil
}

func scanRevision(sc scanner) (slipway.Revision, error) {
	var (
		r       slipway.Revision
		spec    []byte
		created string
	)
	if err := sc.Scan(&r.App, &r.ID, &r.Number, &r.Version, &spec, &created); err != nil {
		return r, err
	}
	if err := json.Unmarshal(spec, &r.Spec); err != nil {
		return r, fmt.Errorf("decode revision: %w", err)
	}
	var err error
	r.CreatedAt, err = parseTime(created)
	return r, err
}

// Rollout returns the rollout id, or ENOTFOUND.
func (s *Store) Rollout(ctx context.Context, id string) (slipway.Rollout, error) {
	r, err := scanRollout(s.rs.rollout.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("rollout", id)
	}
	if err != nil {
		return r, internal("read rollout "+id, err)
	}
	return r, nil
}

// Rollouts returns app's rollouts, newest (highest Number) first, at most limit (all when
// limit <= 0).
func (s *Store) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	if limit <= 0 {
		limit = -1
	}
	return queryAll(ctx, s.rs.rollouts, "read rollouts of "+app, scanRollout, app, limit)
}

// ActiveRollouts returns every rollout for which Active() is true, of every app, ordered by
// app and number.
func (s *Store) ActiveRollouts(ctx context.Context) ([]slipway.Rollout, error) {
	return queryAll(ctx, s.rs.active, "read active rollouts", scanRollout)
}

func scanRollout(sc scanner) (slipway.Rollout, error) {
	return scanVersioned[slipway.Rollout](sc, func(r *slipway.Rollout, v int64) { r.Version = v })
}

// AnalysisRun returns the analysis run id, or ENOTFOUND.
func (s *Store) AnalysisRun(ctx context.Context, id string) (slipway.AnalysisRun, error) {
	r, err := scanRun(s.rs.run.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("analysis run", id)
	}
	if err != nil {
		return r, internal("read analysis run "+id, err)
	}
	return r, nil
}

// AnalysisRuns returns a rollout's analysis runs, oldest (by StartedAt, then by insertion)
// first.
func (s *Store) AnalysisRuns(ctx context.Context, rollout string) ([]slipway.AnalysisRun, error) {
	return queryAll(ctx, s.rs.runs, "read analysis runs of "+rollout, scanRun, rollout)
}

// FlagAnalysisRuns returns the analysis runs of flag's ramps, oldest first.
func (s *Store) FlagAnalysisRuns(ctx context.Context, flag string) ([]slipway.AnalysisRun, error) {
	return queryAll(ctx, s.rs.flagRuns, "read analysis runs of flag "+flag, scanRun, flag)
}

func scanRun(sc scanner) (slipway.AnalysisRun, error) {
	return scanVersioned[slipway.AnalysisRun](sc, func(r *slipway.AnalysisRun, v int64) { r.Version = v })
}

// scanVersioned decodes a (data, version) row; the version column is the truth. From
// *sql.Rows it decodes the driver's bytes in place instead of copying them first.
func scanVersioned[T any](sc scanner, setVersion func(*T, int64)) (T, error) {
	var (
		v       T
		data    []byte
		version int64
		err     error
	)
	if _, ok := sc.(*sql.Rows); ok {
		var raw sql.RawBytes
		err = sc.Scan(&raw, &version)
		data = raw
	} else {
		err = sc.Scan(&data, &version)
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	setVersion(&v, version)
	return v, nil
}

// Events returns the events f selects, oldest (lowest Seq) first. With f.Limit > 0 and
// f.After == 0 they are the newest Limit events; with f.After > 0, the first Limit after it.
func (s *Store) Events(ctx context.Context, f slipway.EventFilter) ([]slipway.Event, error) {
	var (
		where []string
		args  []any
	)
	if f.App != "" {
		where = append(where, "app = ?")
		args = append(args, f.App)
	}
	if f.Rollout != "" {
		where = append(where, "rollout = ?")
		args = append(args, f.Rollout)
	}
	if f.After > 0 {
		where = append(where, "seq > ?")
		args = append(args, f.After)
	}
	var q strings.Builder
	q.WriteString("SELECT seq, time, app, rollout, kind, actor, peer, message, reason, data FROM events")
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	newest := f.Limit > 0 && f.After <= 0
	if newest {
		q.WriteString(" ORDER BY seq DESC")
	} else {
		q.WriteString(" ORDER BY seq")
	}
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, internal("read events", err)
	}
	evs, err := collect(rows, scanEvent)
	if err != nil {
		return nil, internal("read events", err)
	}
	if newest {
		slices.Reverse(evs)
	}
	return evs, nil
}

func scanEvent(sc scanner) (slipway.Event, error) {
	var (
		e    slipway.Event
		t    string
		data []byte
	)
	if err := sc.Scan(&e.Seq, &t, &e.App, &e.Rollout, &e.Kind, &e.Actor, &e.Peer, &e.Message, &e.Reason, &data); err != nil {
		return e, err
	}
	if data != nil {
		e.Data = json.RawMessage(data)
	}
	var err error
	e.Time, err = parseTime(t)
	return e, err
}

// queryAll runs a prepared query and scans every row; the result is never nil.
func queryAll[T any](ctx context.Context, st *sql.Stmt, op string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
