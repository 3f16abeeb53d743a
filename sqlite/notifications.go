package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"slipway.dev/slipway"
)

var _ slipway.NotificationStore = (*Store)(nil)

// maxDeliveriesKept bounds a notification's delivery log: older entries are removed.
const maxDeliveriesKept = 1000

// Notifications lists the notifications, by name.
func (s *Store) Notifications(ctx context.Context) ([]slipway.Notification, error) {
	return listNamed[slipway.Notification](ctx, s, "notifications", "notifications")
}

// PutNotifications creates or replaces ns and stores events, in one transaction.
func (s *Store) PutNotifications(ctx context.Context, ns []slipway.Notification, events []slipway.Event) error {
	return putNamed(ctx, s, "notifications", "notifications", ns, func(n slipway.Notification) string { return n.Name }, events)
}

// NotifyCursor returns how far notification name has dealt with environment env's events.
func (s *Store) NotifyCursor(ctx context.Context, name, env string) (int64, bool, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM notify_cursors WHERE notification = ? AND environment = ?`, name, env).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, internal("read notification cursor", err)
	}
	return seq, true, nil
}

// SetNotifyCursor moves a notification's cursor of an environment to seq.
func (s *Store) SetNotifyCursor(ctx context.Context, name, env string, seq int64) error {
	const op = "write notification cursor"
	return s.writeTx(ctx, op, func(tx *sql.Tx) error { return setCursor(ctx, tx, op, name, env, seq) })
}

// RecordDelivery stores d and moves its cursor to d.Seq in one transaction; the log keeps
// the newest maxDeliveriesKept entries of each notification.
func (s *Store) RecordDelivery(ctx context.Context, d slipway.NotificationDelivery) error {
	const op = "record notification delivery"
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notify_deliveries (notification, environment, seq, kind, status, attempts, code, error, time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.Notification, d.Environment, d.Seq, d.Kind, d.Status, d.Attempts, d.Code, d.Error, formatTime(d.Time)); err != nil {
			return internal(op, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM notify_deliveries WHERE notification = ?1 AND id <= (
			SELECT id FROM notify_deliveries WHERE notification = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`, d.Notification, maxDeliveriesKept); err != nil {
			return internal(op, err)
		}
		return setCursor(ctx, tx, op, d.Notification, d.Environment, d.Seq)
	})
}

func setCursor(ctx context.Context, tx *sql.Tx, op, name, env string, seq int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO notify_cursors (notification, environment, seq) VALUES (?, ?, ?)
		ON CONFLICT (notification, environment) DO UPDATE SET seq = MAX(seq, excluded.seq)`, name, env, seq); err != nil {
		return internal(op, err)
	}
	return nil
}

// NotificationDeliveries lists notification name's deliveries, newest first, at most limit
// (all kept when limit <= 0).
func (s *Store) NotificationDeliveries(ctx context.Context, name string, limit int) ([]slipway.NotificationDelivery, error) {
	const op = "list notification deliveries"
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, notification, environment, seq, kind, status, attempts, code, error, time
		FROM notify_deliveries WHERE notification = ? ORDER BY id DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []slipway.NotificationDelivery
	for rows.Next() {
		var d slipway.NotificationDelivery
		var at string
		if err := rows.Scan(&d.ID, &d.Notification, &d.Environment, &d.Seq, &d.Kind, &d.Status, &d.Attempts, &d.Code, &d.Error, &at); err != nil {
			return nil, internal(op, err)
		}
		t, err := parseTime(at)
		if err != nil {
			return nil, internal(op, err)
		}
		d.Time = t
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}
