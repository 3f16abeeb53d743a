package ofrep

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// state is one revision of the flags as the server has seen it: the Set, a generation that
// grows whenever a different Set is seen, when that happened, and the revision's ETag.
type state struct {
	set        *flags.Set
	gen        uint64
	modified   time.Time
	configETag string        // quoted; names the revision (event-stream messages)
	changed    chan struct{} // closed when a newer state replaces this one
	// meta caches the encoded metadata maps of set (flag metadata is one map per flag,
	// shared by every evaluation), keyed by the map's identity.
	meta     sync.Map // unsafe.Pointer → []byte
	metaSize atomic.Int64
}

// maxMetaCache bounds state.meta, in case a Set ever hands out fresh maps.
const maxMetaCache = 1 << 14

// appendMetadata appends m (a metadata map of st.set) as JSON, encoding it once per state.
func (st *state) appendMetadata(b []byte, m map[string]any) []byte {
	id := reflect.ValueOf(m).UnsafePointer()
	if enc, ok := st.meta.Load(id); ok {
		return append(b, enc.([]byte)...)
	}
	if st.metaSize.Load() >= maxMetaCache {
		return appendObject(b, m)
	}
	enc := appendObject(nil, m)
	if _, loaded := st.meta.LoadOrStore(id, enc); !loaded {
		st.metaSize.Add(1)
	}
	return append(b, enc...)
}

type stateRef = atomic.Pointer[state]

// current returns the state for the Set in force, making a new one (and waking the event
// streams) when the Set was swapped since the last look.
func (s *Server) current() *state {
	var set *flags.Set
	if s.flags != nil {
		set = s.flags.Load()
	}
	st := s.state.Load()
	if st.set == set && st.gen > 0 {
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st = s.state.Load()
	if st.set == set && st.gen > 0 {
		return st
	}
	next := &state{set: set, gen: st.gen + 1, modified: s.now(), changed: make(chan struct{})}
	next.configETag = s.configETag(next)
	s.state.Store(next)
	close(st.changed)
	return next
}

// Notify tells the server that Config.Flags may hold a new Set: the event streams are told
// to refetch at once. Call it after every Swap (without it, streams notice at their next
// heartbeat and requests at once).
func (s *Server) Notify() { s.current() }

// configETag names st's revision: a hash of the process nonce, generation and revision.
func (s *Server) configETag(st *state) string {
	var b [16 + 16]byte
	copy(b[:16], s.nonce[:])
	binary.BigEndian.PutUint64(b[16:24], st.gen)
	if st.set != nil {
		binary.BigEndian.PutUint64(b[24:], uint64(st.set.Revision()))
	}
	sum := sha256.Sum256(b[:])
	return quote(sum[:])
}

// etag is the strong bulk ETag: a hash of the flag-set revision and the canonical JSON of
// the request's context, so a changed context never matches an old ETag. scratch is reused.
func (s *Server) etag(st *state, ctx map[string]any, scratch []byte) (string, []byte) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], st.gen)
	if st.set != nil {
		binary.BigEndian.PutUint64(b[8:], uint64(st.set.Revision()))
	}
	scratch = append(scratch[:0], s.nonce[:]...)
	scratch = append(scratch, b[:]...)
	scratch = appendObject(scratch, ctx)
	sum := sha256.Sum256(scratch)
	return quote(sum[:]), scratch
}

func quote(sum []byte) string {
	var b [2 + 22]byte
	b[0], b[len(b)-1] = '"', '"'
	base64.RawURLEncoding.Encode(b[1:len(b)-1], sum[:16])
	return string(b[:])
}

// matches reports whether an If-None-Match header value matches etag (weak comparison,
// quoted or unquoted entity tags, a list, or *).
func matches(header, etag string) bool {
	bare := etag[1 : len(etag)-1]
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		tag = strings.TrimPrefix(tag, "W/")
		if tag == "*" || tag == etag || tag == bare {
			return true
		}
	}
	return false
}

// serveSingle answers POST /ofrep/v1/evaluate/flags/{key}.
func (s *Server) serveSingle(w http.ResponseWriter, r *http.Request, key string) {
	bp := buffers.Get().(*[]byte)
	ctx := contexts.Get().(map[string]any)
	defer func() {
		clear(ctx)
		contexts.Put(ctx)
		buffers.Put(bp)
	}()
	buf, ok := s.readContext(w, r, (*bp)[:0], ctx, key)
	*bp = buf[:0]
	if !ok {
		return
	}
	st := s.current()
	var e slipway.Evaluation
	if st.set == nil {
		e = slipway.Evaluation{Key: key, Reason: slipway.ReasonError, ErrorCode: slipway.FlagNotFound, ErrorDetails: "flag " + key + " not found"}
	} else {
		e = st.set.Evaluate(key, ctx, s.now())
	}
	s.count(&e)
	status := http.StatusOK
	switch e.ErrorCode {
	case "":
	case slipway.FlagNotFound:
		status = http.StatusNotFound
	default:
		status = http.StatusBadRequest
	}
	b := appendEvaluation(buf[:0], &e, st)
	s.write(w, status, b)
	*bp = b[:0]
}

// serveBulk answers POST /ofrep/v1/evaluate/flags: every flag for one context, with an
// ETag; 304 when If-None-Match names the current one. keyIndex is the API key used (-1:
// none), which selects the event-stream token.
func (s *Server) serveBulk(w http.ResponseWriter, r *http.Request, keyIndex int) {
	bp := buffers.Get().(*[]byte)
	ctx := contexts.Get().(map[string]any)
	defer func() {
		clear(ctx)
		contexts.Put(ctx)
		buffers.Put(bp)
	}()
	buf, ok := s.readContext(w, r, (*bp)[:0], ctx, "")
	*bp = buf[:0]
	if !ok {
		return
	}
	// flagConfigEtag and flagConfigLastModified (sent after an event) are freshness hints
	// for caches in front of the flags; this server always evaluates the Set in force, so
	// it accepts and needs neither.
	st := s.current()
	etag, buf := s.etag(st, ctx, buf)
	h := w.Header()
	h["Etag"] = []string{etag}
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		for _, v := range inm {
			if matches(v, etag) {
				w.WriteHeader(http.StatusNotModified)
				*bp = buf[:0]
				return
			}
		}
	}
	b := append(buf[:0], `{"flags":[`...)
	if st.set != nil {
		now := s.now()
		for i, k := range st.set.Keys() {
			e := st.set.Evaluate(k, ctx, now)
			s.count(&e)
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEvaluation(b, &e, st)
		}
		b = append(b, ']')
		if md := st.set.Metadata(); len(md) > 0 {
			b = append(b, `,"metadata":`...)
			b = st.appendMetadata(b, md)
		}
	} else {
		b = append(b, ']')
	}
	b = append(b, `,"eventStreams":[{"type":"sse","endpoint":{"requestUri":"`+EventsPath...)
	if keyIndex >= 0 {
		b = append(b, "?token="...)
		b = append(b, s.tokens[keyIndex]...)
	}
	b = append(b, `"}}]}`...)
	s.write(w, http.StatusOK, b)
	*bp = b[:0]
}

// count records an evaluation in Stats and slipway_flag_evaluations_total. Unknown keys are
// not counted: they come from callers and would make the label set unbounded.
func (s *Server) count(e *slipway.Evaluation) {
	if e.ErrorCode == slipway.FlagNotFound {
		return
	}
	if s.stats != nil {
		s.stats.Record(e.Key, e.Variant)
	}
	if s.evals != nil {
		s.evals.WithLabelValues(e.Key, e.Variant, string(e.Reason)).Inc()
	}
}
