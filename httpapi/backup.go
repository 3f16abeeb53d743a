package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"slipway.dev/slipway"
)

// Backuper writes a consistent copy of the store while it is in use (sqlite.Store).
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) error
}

// backupType is the media type of a backup: an SQLite database file.
const backupType = "application/vnd.sqlite3"

// backup streams a copy of the store. The copy is made whole before the first byte is sent,
// so an error before then is an ordinary error answer.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	f, err := os.CreateTemp("", "slipway-backup-*.db")
	if err != nil {
		s.fail(w, r, fmt.Errorf("backup: %w", err))
		return
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer f.Close()
	if err := s.cfg.Backup.Backup(r.Context(), f); err != nil {
		s.fail(w, r, err)
		return
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("backup: %w", err))
		return
	}
	w.Header().Set("Content-Type", backupType)
	w.Header().Set("Content-Length", fmt.Sprint(size))
	w.Header().Set("Content-Disposition", `attachment; filename="slipway.db"`)
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
}

// Backup writes a consistent copy of the server's store to w (GET /api/v1/backup; admin).
// It returns the bytes written.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := c.request(ctx, http.MethodGet, "/api/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, answerError(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: read the copy: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, slipway.Errorf(slipway.EINTERNAL, "backup: got %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}
