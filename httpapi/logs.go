package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Log streaming defaults.
const (
	DefaultLogTail = 100
	logPoll        = 250 * time.Millisecond
)

// logs serves GET /api/v1/apps/{app}/logs?revision=&tail=&follow=: the last tail lines of
// each instance's live log file, each line prefixed with the instance ID; with follow=true
// it then streams new lines until the client goes away.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Logs == nil {
		s.fail(w, r, slipway.Errorf(slipway.ENOTFOUND, "this server's platform keeps no instance logs"))
		return
	}
	app, q := r.PathValue("app"), r.URL.Query()
	tail := DefaultLogTail
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(w, r, slipway.Errorf(slipway.EINVALID, "tail %q must be a count of lines, 0 or more", v))
			return
		}
		tail = n
	}
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	if _, err := s.cfg.State.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	files, err := liveLogs(s.cfg.Logs, app, q.Get("revision"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	offsets := map[string]int64{}
	for _, f := range files {
		end, err := writeTail(w, f, tail)
		if err != nil {
			s.log.Debug("read log failed", "file", f.path, "err", err)
		}
		offsets[f.path] = end
	}
	_ = rc.Flush()
	if !follow {
		return
	}
	s.followLogs(r.Context(), w, rc, app, q.Get("revision"), offsets)
}

// followLogs streams what is appended to the app's live log files, picking up instances
// that start meanwhile and files that were rotated (truncated).
func (s *Server) followLogs(ctx context.Context, w io.Writer, rc *http.ResponseController, app, revision string, offsets map[string]int64) {
	t := time.NewTicker(logPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		files, err := liveLogs(s.cfg.Logs, app, revision)
		if err != nil {
			continue
		}
		wrote := false
		for _, f := range files {
			end, err := copyFrom(w, f, offsets[f.path])
			if err != nil {
				continue
			}
			wrote = wrote || end != offsets[f.path]
			offsets[f.path] = end
		}
		if wrote {
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

type logFile struct {
	instance string
	path     string
}

// liveLogs keeps the live file (<instance>.log) of each instance, sorted by instance.
func liveLogs(src slipway.LogSource, app, revision string) ([]logFile, error) {
	paths, err := src.Logs(app, revision)
	if err != nil {
		return nil, err
	}
	var out []logFile
	for _, p := range paths {
		base := filepath.Base(p)
		if id, ok := strings.CutSuffix(base, ".log"); ok {
			out = append(out, logFile{instance: id, path: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].instance < out[j].instance })
	return out, nil
}

// writeTail writes the last n lines of f, prefixed, and returns the file's size.
func writeTail(w io.Writer, f logFile, n int) (int64, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return 0, err
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(b) == 0 {
		lines = nil
	}
	for _, l := range lines[max(0, len(lines)-n):] {
		fmt.Fprintf(w, "%s | %s\n", f.instance, l)
	}
	return int64(len(b)), nil
}

// copyFrom writes the complete lines of f after offset, prefixed, and returns the offset
// after them. A file shorter than offset was rotated: it is read from the start.
func copyFrom(w io.Writer, f logFile, offset int64) (int64, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return offset, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return offset, err
	}
	if st.Size() < offset {
		offset = 0
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return offset, err
	}
	br := bufio.NewReader(fh)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return offset, nil // a partial last line waits for its newline
		}
		offset += int64(len(line))
		fmt.Fprintf(w, "%s | %s", f.instance, line)
	}
}

// Logs writes an app's instance logs to out: the last tail lines of each instance (tail < 0
// for the server's default), then, with follow, new lines until ctx ends (nil then).
func (c *Client) Logs(ctx context.Context, app, revision string, tail int, follow bool, out io.Writer) error {
	q := url.Values{}
	if revision != "" {
		q.Set("revision", revision)
	}
	if tail >= 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	if follow {
		q.Set("follow", "true")
	}
	req, err := c.request(ctx, http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/logs?"+q.Encode(), "", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach slipway server at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if _, err := io.Copy(out, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs: %w", err)
	}
	return nil
}
