package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"slipway.dev/slipway"
)

// writeStmts are the statements Commit runs, prepared once on the write connection.
type writeStmts struct {
	appInsert, appUpdate, appVersion, appDelete  *sql.Stmt
	templateUpsert, templateDelete               *sql.Stmt
	revisionInsert                               *sql.Stmt
	rolloutInsert, rolloutUpdate, rolloutVersion *sql.Stmt
	rolloutUpdateData                            *sql.Stmt
	runInsert, runUpdate, runVersion             *sql.Stmt
	runUpdateData                                *sql.Stmt
	eventInsert                                  *sql.Stmt
	prune                                        *sql.Stmt
	savepoint, release, rollbackTo               *sql.Stmt
}

func (ws *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, map[**sql.Stmt]string{
		&ws.savepoint:  `SAVEPOINT change`,
		&ws.release:    `RELEASE change`,
		&ws.rollbackTo: `ROLLBACK TO change`,
		&ws.appInsert: `INSERT INTO apps (name, spec, stable, history_limit, created_at, updated_at, version)
			VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (name) DO NOTHING`,
		&ws.appUpdate: `UPDATE apps SET spec = ?, stable = ?, history_limit = ?, created_at = ?, updated_at = ?,
			version = version + 1 WHERE name = ? AND version = ?`,
		&ws.appVersion: `SELECT version FROM apps WHERE name = ?`,
		&ws.appDelete:  `DELETE FROM apps WHERE name = ?`,
		&ws.templateUpsert: `INSERT INTO templates (name, data) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET data = excluded.data`,
		&ws.templateDelete: `DELETE FROM templates WHERE name = ?`,
		&ws.revisionInsert: `INSERT INTO revisions (app, id, number, version, spec, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app, id) DO NOTHING`,
		&ws.rolloutInsert: `INSERT INTO rollouts (id, app, number, phase, active, from_rev, to_rev, data, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (id) DO NOTHING`,
		&ws.rolloutUpdate: `UPDATE rollouts SET app = ?, number = ?, phase = ?, active = ?, from_rev = ?, to_rev = ?,
			data = ?, version = version + 1 WHERE id = ? AND version = ?`,
		&ws.rolloutVersion: `SELECT version FROM rollouts WHERE id = ?`,
		// The common update leaves the indexed columns alone, so SQLite rewrites no index
		// page; it matches only when they are unchanged. It leaves what revision pruning
		// depends on (active, from_rev, to_rev) alone too, so a Change that only moves a
		// rollout on need not prune.
		&ws.rolloutUpdateData: `UPDATE rollouts SET phase = ?3, data = ?4, version = version + 1
			WHERE id = ?1 AND version = ?2 AND app = ?5 AND number = ?6 AND active = ?7 AND from_rev = ?8 AND to_rev = ?9`,
		&ws.runInsert: `INSERT INTO analysis_runs (id, rollout, app, phase, started_at, data, version)
			VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (id) DO NOTHING`,
		&ws.runUpdate: `UPDATE analysis_runs SET rollout = ?, app = ?, phase = ?, started_at = ?, data = ?,
			version = version + 1 WHERE id = ? AND version = ?`,
		&ws.runVersion: `SELECT version FROM analysis_runs WHERE id = ?`,
		&ws.runUpdateData: `UPDATE analysis_runs SET app = ?3, phase = ?4, data = ?5,
			version = version + 1 WHERE id = ?1 AND version = ?2 AND rollout = ?6 AND started_at = ?7`,
		&ws.eventInsert: `INSERT INTO events (time, app, rollout, kind, actor, peer, message, reason, data)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		// Keep the newest history_limit revisions, the stable one, and those an active
		// rollout moves from or to.
		&ws.prune: `DELETE FROM revisions WHERE app = ?1
			AND id NOT IN (SELECT id FROM revisions WHERE app = ?1 ORDER BY number DESC
				LIMIT COALESCE((SELECT history_limit FROM apps WHERE name = ?1), -1))
			AND id NOT IN (SELECT stable FROM apps WHERE name = ?1)
			AND id NOT IN (SELECT from_rev FROM rollouts WHERE app = ?1 AND active = 1)
			AND id NOT IN (SELECT to_rev FROM rollouts WHERE app = ?1 AND active = 1)`,
	})
}

func (ws *writeStmts) close() []error {
	return closeAll(ws.appInsert, ws.appUpdate, ws.appVersion, ws.appDelete,
		ws.templateUpsert, ws.templateDelete, ws.revisionInsert,
		ws.rolloutInsert, ws.rolloutUpdate, ws.rolloutVersion, ws.rolloutUpdateData,
		ws.runInsert, ws.runUpdate, ws.runVersion, ws.runUpdateData, ws.eventInsert, ws.prune,
		ws.savepoint, ws.release, ws.rollbackTo)
}

// committed is what a successful Commit hands back into the Change.
type committed struct {
	apps, rollouts, runs []int64
	flagSets             []int64
	seqs                 []int64
	times                []time.Time
}

// Commit writes c in one transaction: all of it or nothing. Concurrent Commits share a
// transaction (group commit, see enqueue), each inside its own savepoint, so one Change's
// failure never touches another's writes. Writes run in this order:
// app deletions (cascading to the app's revisions, rollouts and analysis runs; events are
// kept), apps, template deletions, templates, revisions, rollouts, analysis runs, flag set
// deletions, flag sets (each a new kept version), events, then revision pruning for every
// app the Change wrote.
//
// A record with Version 0 is inserted (ECONFLICT if it exists); any other Version must
// equal the stored one (ECONFLICT if it differs, ENOTFOUND if the record is missing; a
// negative Version is EINVALID).
// Deleting a missing app or template, or writing a record whose app or rollout is missing,
// returns ENOTFOUND. Templates are upserted; revisions that exist are left as they are.
// On success Commit sets every Version in c to the stored one, every Event's Seq, and the
// Time of events that had none to the store's clock; on failure c is left untouched. A
// Commit whose ctx ends before its Change is picked up writes nothing; once picked up, it
// runs to the end.
func (s *Store) Commit(ctx context.Context, c *slipway.Change) error {
	if c == nil || c.Empty() {
		return nil
	}
	// The batch runs under no caller's context, so the caller's peer is stamped here, on a
	// copy: c changes only on success.
	in := c
	if peer := slipway.PeerFrom(ctx); peer != "" && len(c.Events) > 0 {
		cc := *c
		cc.Events = withPeer(peer, c.Events)
		in = &cc
	}
	p, err := s.enqueue(ctx, in)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if p.err != nil {
		return fmt.Errorf("commit: %w", p.err)
	}
	res := p.res
	for i := range c.Apps {
		c.Apps[i].Version = res.apps[i]
	}
	for i := range c.Rollouts {
		c.Rollouts[i].Version = res.rollouts[i]
	}
	for i := range c.Runs {
		c.Runs[i].Version = res.runs[i]
	}
	for i := range c.FlagSets {
		c.FlagSets[i].Set.Revision = res.flagSets[i]
	}
	for i := range c.Events {
		c.Events[i].Seq = res.seqs[i]
		c.Events[i].Time = res.times[i]
		c.Events[i].Peer = in.Events[i].Peer
	}
	return nil
}

// withPeer returns a copy of events with peer on those that name none.
func withPeer(peer string, events []slipway.Event) []slipway.Event {
	out := slices.Clone(events)
	for i := range out {
		if out[i].Peer == "" {
			out[i].Peer = peer
		}
	}
	return out
}

// wtx is a write transaction with the store's statements bound to it once each: binding a
// statement to a transaction (sql.Tx.StmtContext) allocates and is remembered by the
// transaction until it ends, and a batch runs the same few statements hundreds of times.
type wtx struct {
	*sql.Tx
	ctx   context.Context
	bound map[*sql.Stmt]*sql.Stmt
}

func newWtx(ctx context.Context, tx *sql.Tx) *wtx {
	return &wtx{Tx: tx, ctx: ctx, bound: make(map[*sql.Stmt]*sql.Stmt, 8)}
}

// stmt returns st bound to t.
func (t *wtx) stmt(st *sql.Stmt) *sql.Stmt {
	b, ok := t.bound[st]
	if !ok {
		b = t.StmtContext(t.ctx, st)
		t.bound[st] = b
	}
	return b
}

// write runs c's statements in tx. It changes nothing outside tx (c included), so that a
// batch can run it again after a rollback.
func (s *Store) write(ctx context.Context, tx *wtx, c *slipway.Change) (committed, error) {
	ws := &s.ws
	res := committed{
		apps:     make([]int64, len(c.Apps)),
		rollouts: make([]int64, len(c.Rollouts)),
		runs:     make([]int64, len(c.Runs)),
		seqs:     make([]int64, len(c.Events)),
		times:    make([]time.Time, len(c.Events)),
	}
	// touched lists, once each and in the order first met, the apps whose revisions may
	// now be pruned.
	var (
		touched []string
		seen    map[string]bool
	)
	touch := func(app string) {
		if seen[app] {
			return
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[app] = true
		touched = append(touched, app)
	}

	for _, name := range c.DeleteApps {
		if err := deleteOne(ctx, tx.stmt(ws.appDelete), "app", name); err != nil {
			return res, err
		}
	}
	for i, a := range c.Apps {
		spec, err := json.Marshal(a.Spec)
		if err != nil {
			return res, internal("encode app "+a.Spec.Name, err)
		}
		v, _, err := writeVersioned(ctx, tx, versioned{
			kind: "app", key: a.Spec.Name, version: a.Version,
			insert: ws.appInsert, update: ws.appUpdate, current: ws.appVersion,
			args: []any{string(spec), a.Stable, a.Spec.HistoryLimit(), formatTime(a.CreatedAt), formatTime(a.UpdatedAt)},
		})
		if err != nil {
			return res, err
		}
		res.apps[i] = v
		touch(a.Spec.Name)
	}
	for _, name := range c.DeleteTemplates {
		if err := deleteOne(ctx, tx.stmt(ws.templateDelete), "analysis template", name); err != nil {
			return res, err
		}
	}
	for _, t := range c.Templates {
		data, err := json.Marshal(t)
		if err != nil {
			return res, internal("encode analysis template "+t.Name, err)
		}
		if _, err := tx.stmt(ws.templateUpsert).ExecContext(ctx, t.Name, string(data)); err != nil {
			return res, internal("write analysis template "+t.Name, err)
		}
	}
	for _, r := range c.Revisions {
		spec, err := json.Marshal(r.Spec)
		if err != nil {
			return res, internal("encode revision "+r.ID, err)
		}
		if _, err := tx.stmt(ws.revisionInsert).ExecContext(ctx,
			r.App, r.ID, r.Number, r.Version, string(spec), formatTime(r.CreatedAt)); err != nil {
			if isForeignKey(err) {
				return res, fmt.Errorf("write revision %s: %w", r.ID, notFound("app", r.App))
			}
			return res, internal("write revision "+r.ID, err)
		}
		touch(r.App)
	}
	for i, r := range c.Rollouts {
		next := r.Version + 1
		r.Version = next
		data, err := json.Marshal(r)
		if err != nil {
			return res, internal("encode rollout "+r.ID, err)
		}
		v, dataOnly, err := writeVersioned(ctx, tx, versioned{
			kind: "rollout", key: r.ID, version: next - 1, parent: "app", parentKey: r.App,
			insert: ws.rolloutInsert, update: ws.rolloutUpdate, current: ws.rolloutVersion,
			args:       []any{r.App, r.Number, string(r.Phase), r.Active(), r.From, r.To, string(data)},
			updateData: ws.rolloutUpdateData,
			dataArgs:   []any{string(r.Phase), string(data), r.App, r.Number, r.Active(), r.From, r.To},
		})
		if err != nil {
			return res, err
		}
		res.rollouts[i] = v
		if !dataOnly {
			touch(r.App)
		}
	}
	for i, run := range c.Runs {
		next := run.Version + 1
		run.Version = next
		data, err := json.Marshal(run)
		if err != nil {
			return res, internal("encode analysis run "+run.ID, err)
		}
		v, _, err := writeVersioned(ctx, tx, versioned{
			kind: "analysis run", key: run.ID, version: next - 1, parent: "rollout", parentKey: run.Rollout,
			insert: ws.runInsert, update: ws.runUpdate, current: ws.runVersion,
			args:       []any{run.Rollout, run.App, string(run.Phase), unixNanos(run.StartedAt), string(data)},
			updateData: ws.runUpdateData,
			dataArgs:   []any{run.App, string(run.Phase), string(data), run.Rollout, unixNanos(run.StartedAt)},
		})
		if err != nil {
			return res, err
		}
		res.runs[i] = v
	}
	if len(c.FlagSets)+len(c.DeleteFlagSets) > 0 {
		v, err := s.writeFlagSets(ctx, tx.Tx, c)
		if err != nil {
			return res, err
		}
		res.flagSets = v
	}
	if len(c.Events) > 0 {
		seqs, times, err := s.writeEvents(ctx, tx.stmt(s.ws.eventInsert), c.Events)
		if err != nil {
			return res, err
		}
		copy(res.seqs, seqs)
		copy(res.times, times)
	}
	for _, app := range touched {
		if _, err := tx.stmt(ws.prune).ExecContext(ctx, app); err != nil {
			return res, internal("prune revisions of "+app, err)
		}
	}
	return res, nil
}

// writeTxEvents stores events within tx, stamped with the request's peer.
func (s *Store) writeTxEvents(ctx context.Context, tx *sql.Tx, events []slipway.Event) error {
	if len(events) == 0 {
		return nil
	}
	_, _, err := s.writeEvents(ctx, tx.StmtContext(ctx, s.ws.eventInsert), withPeer(slipway.PeerFrom(ctx), events))
	return err
}

// writeEvents inserts events with st (the event insert bound to a transaction) and returns
// their Seqs and times (the store's clock for events without one).
func (s *Store) writeEvents(ctx context.Context, st *sql.Stmt, events []slipway.Event) ([]int64, []time.Time, error) {
	now := s.now().UTC()
	seqs, times := make([]int64, len(events)), make([]time.Time, len(events))
	for i, e := range events {
		if e.Time.IsZero() {
			e.Time = now
		}
		var data any
		if len(e.Data) > 0 {
			data = string(e.Data)
		}
		r, err := st.ExecContext(ctx, formatTime(e.Time), e.App, e.Rollout, e.Kind, e.Actor, e.Peer, e.Message, e.Reason, data)
		if err != nil {
			return nil, nil, internal("write event "+e.Kind, err)
		}
		seq, err := r.LastInsertId()
		if err != nil {
			return nil, nil, internal("write event "+e.Kind, err)
		}
		seqs[i], times[i] = seq, e.Time
	}
	return seqs, times, nil
}

// versioned describes one optimistic write: args are the columns after the key for insert,
// and before the key for update. updateData, when set, is tried first for an update: it
// takes the key, the version, then dataArgs, and changes no indexed column.
type versioned struct {
	kind, key         string
	version           int64
	parent, parentKey string
	insert, update    *sql.Stmt
	current           *sql.Stmt
	args              []any
	updateData        *sql.Stmt
	dataArgs          []any
}

// writeVersioned inserts (version 0) or updates (version > 0) one record and returns its
// stored version, and whether the update took the updateData path (it changed no column
// but the data).
func writeVersioned(ctx context.Context, tx *wtx, w versioned) (v int64, dataOnly bool, err error) {
	if w.version < 0 {
		return 0, false, fmt.Errorf("write %s %s: %w", w.kind, w.key, slipway.Errorf(slipway.EINVALID, "%s %q has negative version %d", w.kind, w.key, w.version))
	}
	var r sql.Result
	if w.version == 0 {
		r, err = tx.stmt(w.insert).ExecContext(ctx, append([]any{w.key}, w.args...)...)
	} else if w.updateData != nil {
		r, err = tx.stmt(w.updateData).ExecContext(ctx, append([]any{w.key, w.version}, w.dataArgs...)...)
		if err == nil {
			if n, _ := r.RowsAffected(); n == 1 {
				return w.version + 1, true, nil
			}
			r, err = tx.stmt(w.update).ExecContext(ctx, append(w.args, w.key, w.version)...)
		}
	} else {
		r, err = tx.stmt(w.update).ExecContext(ctx, append(w.args, w.key, w.version)...)
	}
	op := func() string { return fmt.Sprintf("write %s %s", w.kind, w.key) }
	if err != nil {
		if isForeignKey(err) && w.parent != "" {
			return 0, false, fmt.Errorf("%s: %w", op(), notFound(w.parent, w.parentKey))
		}
		return 0, false, internal(op(), err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, false, internal(op(), err)
	}
	if n == 1 {
		return w.version + 1, false, nil
	}
	if w.version == 0 {
		return 0, false, fmt.Errorf("%s: %w", op(), slipway.Errorf(slipway.ECONFLICT, "%s %q already exists", w.kind, w.key))
	}
	var stored int64
	err = tx.stmt(w.current).QueryRowContext(ctx, w.key).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("%s: %w", op(), notFound(w.kind, w.key))
	}
	if err != nil {
		return 0, false, internal(op(), err)
	}
	return 0, false, fmt.Errorf("%s: %w", op(), slipway.Errorf(slipway.ECONFLICT,
		"%s %q changed since it was read (version %d, stored %d)", w.kind, w.key, w.version, stored))
}

// deleteOne runs a delete by key and returns ENOTFOUND when it removed nothing.
func deleteOne(ctx context.Context, st *sql.Stmt, kind, key string) error {
	op := fmt.Sprintf("delete %s %s", kind, key)
	r, err := st.ExecContext(ctx, key)
	if err != nil {
		return internal(op, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return internal(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, notFound(kind, key))
	}
	return nil
}
