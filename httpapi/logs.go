package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// logs serves GET /api/v1/apps/{app}/logs?revision=&tail=&follow=&cursor=: the last tail
// lines of each instance's log (as the platform's slipway.LogSource gives them), each line
// prefixed with the instance ID; with
// follow=true it then streams new lines until the client goes away.
//
// A client that accepts text/event-stream gets each batch of lines as one server-sent event
// whose id is the log cursor after it; sending that id back (Last-Event-ID, or the cursor
// parameter) resumes the stream after those lines instead of tailing again.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	if r.Context().Err() != nil {
		s.stopping(w)
		return
	}
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
	raw := q.Get("cursor")
	if id := strings.TrimSpace(r.Header.Get("Last-Event-ID")); id != "" {
		raw = id
	}
	cursor, err := parseLogCursor(raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.cfg.State.App(r.Context(), app); err != nil {
		s.failStream(w, r, err)
		return
	}
	instances, err := s.cfg.Logs.LogInstances(r.Context(), app, q.Get("revision"))
	if err != nil {
		s.failStream(w, r, err)
		return
	}
	lw := &logWriter{w: w, rc: http.NewResponseController(w), sse: acceptsEventStream(r)}
	if lw.sse {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	offsets := map[string]int64{}
	var batch bytes.Buffer
	for _, id := range instances {
		var lines [][]byte
		var end slipway.LogPosition
		var err error
		if cursor != nil {
			lines, end, err = s.cfg.Logs.ReadLog(r.Context(), app, id, slipway.LogPosition(cursor[id]))
		} else {
			lines, end, err = s.cfg.Logs.TailLog(r.Context(), app, id, tail)
		}
		if err != nil {
			s.log.Debug("read log failed", "instance", id, "err", err)
		}
		writeLines(&batch, id, lines)
		offsets[id] = int64(end)
	}
	// The first event goes out even without lines: it carries the cursor to resume from.
	if err := lw.write(batch.Bytes(), offsets); err != nil || !follow {
		return
	}
	s.followLogs(r.Context(), lw, app, q.Get("revision"), offsets)
}

// followLogs streams what is appended to the app's instance logs, picking up instances that
// start meanwhile. offsets (by instance) say where each log has been read to; an instance
// not in it is read from the start of its log.
func (s *Server) followLogs(ctx context.Context, lw *logWriter, app, revision string, offsets map[string]int64) {
	t := time.NewTicker(logPoll)
	defer t.Stop()
	last := time.Now()
	checked := last
	var batch bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.reauth(ctx, &checked) {
			return // the token was revoked or expired
		}
		instances, err := s.cfg.Logs.LogInstances(ctx, app, revision)
		if err != nil {
			// Nothing to read this time; the heartbeat still goes out, so the client does
			// not take the stream for dead.
			instances = nil
		}
		batch.Reset()
		for _, id := range instances {
			lines, end, err := s.cfg.Logs.ReadLog(ctx, app, id, slipway.LogPosition(offsets[id]))
			if err != nil {
				continue
			}
			writeLines(&batch, id, lines)
			offsets[id] = int64(end)
		}
		switch {
		case batch.Len() > 0:
			if err := lw.write(batch.Bytes(), offsets); err != nil {
				return
			}
			last = time.Now()
		case lw.sse && time.Since(last) >= s.cfg.Heartbeat:
			if err := lw.ping(); err != nil {
				return
			}
			last = time.Now()
		}
	}
}

// logWriter writes batches of prefixed log lines: as they are (text/plain), or each batch
// as one server-sent event whose id is the cursor after it.
type logWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	sse bool
}

// write writes one batch of complete lines and flushes it; offsets is where each file has
// been read to after it.
func (lw *logWriter) write(lines []byte, offsets map[string]int64) error {
	if !lw.sse {
		if _, err := lw.w.Write(lines); err != nil {
			return err
		}
		return lw.rc.Flush()
	}
	var b bytes.Buffer
	b.WriteString("id: " + encodeLogCursor(offsets) + "\n")
	for line := range bytes.Lines(lines) {
		b.WriteString("data: ")
		b.Write(line)
	}
	b.WriteString("\n")
	if _, err := lw.w.Write(b.Bytes()); err != nil {
		return err
	}
	return lw.rc.Flush()
}

// ping sends a comment line, so that proxies keep an idle stream open.
func (lw *logWriter) ping() error {
	if _, err := io.WriteString(lw.w, ": ping\n\n"); err != nil {
		return err
	}
	return lw.rc.Flush()
}

// noLogs is the cursor of a stream that has seen no log file yet: every file is read from
// its start.
const noLogs = "-"

// encodeLogCursor writes where each instance's live log has been read to, as
// "<instance>=<offset>&..." sorted by instance (a query string, so that it is one line), or
// noLogs.
func encodeLogCursor(offsets map[string]int64) string {
	if len(offsets) == 0 {
		return noLogs
	}
	v := url.Values{}
	for inst, off := range offsets {
		v.Set(inst, strconv.FormatInt(off, 10))
	}
	return v.Encode()
}

// parseLogCursor reads a cursor that encodeLogCursor wrote; nil for "" (no cursor).
func parseLogCursor(s string) (map[string]int64, error) {
	switch s {
	case "":
		return nil, nil
	case noLogs:
		return map[string]int64{}, nil
	}
	bad := func(why string) error {
		return slipway.Errorf(slipway.EINVALID, "log cursor %q is not valid: %s; send back the id of an event of the log stream (<instance>=<position>&...)", s, why)
	}
	v, err := url.ParseQuery(s)
	if err != nil {
		return nil, bad("not a query string")
	}
	out := make(map[string]int64, len(v))
	for inst, vals := range v {
		n, err := strconv.ParseInt(vals[len(vals)-1], 10, 64)
		if inst == "" || err != nil || n < 0 {
			return nil, bad(fmt.Sprintf("instance %q has offset %q, want a log position, 0 or more", inst, vals[len(vals)-1]))
		}
		out[inst] = n
	}
	return out, nil
}

// acceptsEventStream reports whether the client asked for server-sent events.
func acceptsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// writeLines writes lines, each prefixed with the instance it came from.
func writeLines(w *bytes.Buffer, instance string, lines [][]byte) {
	for _, l := range lines {
		w.WriteString(instance)
		w.WriteString(" | ")
		w.Write(l)
		w.WriteByte('\n')
	}
}

// Logs writes an app's instance logs to out: the last tail lines of each instance (tail < 0
// for the server's default), then, with follow, new lines until ctx ends (nil then). A
// follow reads the stream as server-sent events and, with SetReconnect, resumes after the
// last lines it wrote when the connection breaks: no line is written twice or skipped.
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
	path := "/api/v1/apps/" + url.PathEscape(app) + "/logs?" + q.Encode()
	if !follow {
		req, err := c.request(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return c.unreachable(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return answerError(resp)
		}
		if _, err := io.Copy(out, resp.Body); err != nil && ctx.Err() == nil {
			return fmt.Errorf("read logs: %w", err)
		}
		return nil
	}
	cursor := ""
	open := func() (string, string) { return path, cursor }
	return c.follow(ctx, "log stream", nil, open, func(resp *http.Response) error {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			// A server that streams logs only as text: follow it without resume.
			if _, err := io.Copy(out, resp.Body); err != nil && ctx.Err() == nil {
				return fmt.Errorf("read logs: %w", err)
			}
			return nil
		}
		err := readLogStream(resp.Body, func(lines []byte, id string) error {
			if _, err := out.Write(lines); err != nil {
				return err
			}
			if id != "" {
				cursor = id
			}
			return nil
		})
		return streamEnded(ctx, err)
	})
}

// readLogStream reads the events of a log stream and calls fn with each event's lines (each
// ending in a newline) and its id, the cursor after them. An event cut short by the end of
// the stream is not delivered. It returns fn's error as an fnError; the end of the stream
// and a broken connection are transient errors.
func readLogStream(r io.Reader, fn func(lines []byte, id string) error) error {
	return readSSE(r, "log", 0, func(lines []byte, id string) error {
		if err := fn(lines, id); err != nil {
			return fnError{err}
		}
		return nil
	})
}
