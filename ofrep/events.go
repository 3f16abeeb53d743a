package ofrep

import (
	"net/http"
	"strconv"
	"time"
)

// serveEvents streams server-sent events (GET /ofrep/v1/events): an `event: message` whose
// data is {"type":"refetchEvaluation","etag":...,"lastModified":...} each time the flags
// change, and a comment line every heartbeat while idle. Each event's id is the revision's
// ETag, so a client reconnecting with an older Last-Event-ID is told to refetch at once. The
// stream ends when the client goes away, the request's context ends, or CloseStreams is
// called.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// A server-wide write timeout would cut the stream; streams live until closed.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	h["X-Accel-Buffering"] = []string{"no"}
	w.WriteHeader(http.StatusOK)

	st := s.current()
	b := append([]byte(nil), "retry: 2000\n"...)
	if last := r.Header.Get("Last-Event-ID"); last != "" && last != st.configETag[1:len(st.configETag)-1] {
		b = appendRefetch(b, st)
	} else {
		b = append(b, ": connected\n\n"...)
	}
	send := func() bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		b = b[:0]
		return rc.Flush() == nil
	}
	if !send() {
		return
	}
	s.log.Debug("event stream opened", "remote", r.RemoteAddr)
	defer s.log.Debug("event stream closed", "remote", r.RemoteAddr)

	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-st.changed:
			st = s.current()
			b = appendRefetch(b, st)
		case <-tick.C:
			if cur := s.current(); cur != st {
				st = cur
				b = appendRefetch(b, st)
			} else {
				b = append(b, ": heartbeat\n\n"...)
			}
		}
		if !send() {
			return
		}
	}
}

// appendRefetch appends a refetchEvaluation event for st.
func appendRefetch(b []byte, st *state) []byte {
	b = append(b, "id: "...)
	b = append(b, st.configETag[1:len(st.configETag)-1]...)
	b = append(b, "\nevent: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":"...)
	b = appendString(b, st.configETag)
	b = append(b, `,"lastModified":`...)
	b = strconv.AppendInt(b, st.modified.Unix(), 10)
	return append(b, "}\n\n"...)
}

// CloseStreams ends every open event stream and refuses none later (new streams end at
// once). Register it with http.Server.RegisterOnShutdown: Shutdown does not wait for
// streaming responses to end by themselves.
func (s *Server) CloseStreams() {
	s.once.Do(func() { close(s.closing) })
}
