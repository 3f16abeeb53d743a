package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// stream serves GET /api/v1/events/stream as server-sent events. Each event is written as
//
//	id: <seq>
//	event: <kind>
//	data: <event JSON>
//
// A client that reconnects with Last-Event-ID resumes after that event; otherwise the stream
// starts after the `after` query parameter (0: from the first stored event). One watcher
// (watch.go) polls the store every EventPoll for all streams and wakes them when events
// arrive; a stream then reads its own. It sends a ": ping" comment every Heartbeat, and ends
// when the client goes or the request context ends. Streams are limited in all
// (MaxStreams, 503) and per client address (MaxStreamsPerClient, 429). A request that comes to a server that is stopping is
// answered 503, so that the client connects again, to the server that runs next.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	if r.Context().Err() != nil {
		s.stopping(w)
		return
	}
	f, err := eventFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if id := strings.TrimSpace(r.Header.Get("Last-Event-ID")); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, slipway.Errorf(slipway.EINVALID, "Last-Event-ID %q must be an event sequence number", id))
			return
		}
		f.After = n
	}
	ctx := r.Context()
	log := s.log.With("app", f.App, "after", f.After)
	if err := s.watch.join(r.RemoteAddr, s.cfg.MaxStreams, s.cfg.MaxStreamsPerClient); err != nil {
		s.fail(w, r, err)
		return
	}
	defer s.watch.leave(r.RemoteAddr)
	// Read once before answering, so that a broken store is a proper error answer.
	seen := s.watch.current()
	first, err := s.cfg.State.Events(ctx, slipway.EventFilter{App: f.App, Rollout: f.Rollout, After: f.After, Limit: streamBatch})
	if err != nil {
		s.failStream(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		log.Debug("event stream cannot flush", "err", err)
		return
	}

	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()

	batch := first
	checked := time.Now()
	for {
		if !s.reauth(ctx, &checked) {
			return // the token was revoked or expired: the client's next request says so
		}
		for _, e := range s.stampEvents(batch) {
			if err := writeEvent(w, e); err != nil {
				log.Debug("event stream write failed", "err", err)
				return
			}
			f.After = e.Seq
		}
		if len(batch) > 0 {
			if err := rc.Flush(); err != nil {
				log.Debug("event stream write failed", "err", err)
				return
			}
			beat.Reset(s.cfg.Heartbeat)
		}
		if len(batch) < streamBatch {
			// Caught up: wait until the watcher sees newer events.
			if !s.waitEvents(w, rc, s.watch.wait(seen), beat, r, &checked) {
				return
			}
			seen = s.watch.current()
		}
		batch, err = s.cfg.State.Events(ctx, slipway.EventFilter{App: f.App, Rollout: f.Rollout, After: f.After, Limit: streamBatch})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The store may recover; keep the stream and try again at the next poll.
			log.Error("event stream read failed", "err", err)
			batch = nil
		}
	}
}

// waitEvents waits until changed is closed, sending heartbeats meanwhile. It returns false
// when the stream must end.
func (s *Server) waitEvents(w http.ResponseWriter, rc *http.ResponseController, changed <-chan struct{}, beat *time.Ticker, r *http.Request, checked *time.Time) bool {
	for {
		select {
		case <-r.Context().Done():
			return false
		case <-changed:
			return true
		case <-beat.C:
			if !s.reauth(r.Context(), checked) {
				return false
			}
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return false
			}
			if err := rc.Flush(); err != nil {
				return false
			}
		}
	}
}

// writeEvent writes one event in the SSE wire format. JSON holds no raw newline, so the data
// fits one data line.
func writeEvent(w http.ResponseWriter, e slipway.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("marshal event %d: %w", e.Seq, err)
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, sseField(e.Kind), b)
	return err
}

// sseField keeps a value on one SSE line.
func sseField(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// stopping answers a stream request that came to a server that is stopping (the request's
// context, derived from the server's base context, has ended before the stream started):
// 503, which a client takes as "connect again" (Transient).
func (s *Server) stopping(w http.ResponseWriter) {
	WriteError(w, http.StatusServiceUnavailable, slipway.Errorf(slipway.EINTERNAL, "the server is stopping; connect again"))
}

// failStream answers an error before a stream has started; when the request's context ended
// meanwhile the server is stopping (or the client has gone), and the answer is 503.
func (s *Server) failStream(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		s.stopping(w)
		return
	}
	s.fail(w, r, err)
}
