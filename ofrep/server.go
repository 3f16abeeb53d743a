package ofrep

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// Defaults.
const (
	// DefaultMaxBody is the largest request body accepted when Config.MaxBody is 0.
	DefaultMaxBody = 64 << 10
	// DefaultHeartbeat is how often an idle event stream gets a comment line when
	// Config.Heartbeat is 0.
	DefaultHeartbeat = 15 * time.Second
)

// Paths served.
const (
	pathPrefix = "/ofrep/v1/"
	pathBulk   = "/ofrep/v1/evaluate/flags"
	pathSingle = "/ofrep/v1/evaluate/flags/"
	// EventsPath is the server-sent event stream announced in bulk responses' eventStreams.
	EventsPath = "/ofrep/v1/events"
)

// Config configures a Server.
type Config struct {
	// Flags holds the compiled flags in force; whoever manages flags swaps new Sets into it
	// and then calls Server.Notify. A nil Current, or one holding nil, serves no flags.
	Flags *flags.Current
	// APIKeys, when non-empty, are the accepted credentials: a request must carry one in
	// X-API-Key or Authorization: Bearer, or it gets 401.
	APIKeys []string
	// RateLimit is the sustained requests per second allowed per client IP; 0 means no limit.
	// Burst is the bucket size (at least 1). A request over the limit gets 429 with
	// Retry-After in whole seconds.
	RateLimit float64
	Burst     int
	// MaxBody is the largest request body in bytes (DefaultMaxBody when 0); a larger one
	// gets 413.
	MaxBody int64
	// Heartbeat is the idle interval between comment lines on event streams (DefaultHeartbeat
	// when 0). At each heartbeat the stream also notices a swapped Set that was not announced
	// with Notify.
	Heartbeat time.Duration
	// Metrics, when set, receives slipway_flag_evaluations_total{flag,variant,reason}.
	Metrics prometheus.Registerer
	// Stats, when set, counts every evaluation of a known flag by variant, for stale-flag
	// detection (the engine flushes it to the store).
	Stats *flags.Stats
	// Now is the clock ($flagd.timestamp, lastModified, rate limits); time.Now when nil.
	Now func() time.Time
	// Log receives the server's few log lines; discarded when nil.
	Log *slog.Logger
}

// Server serves OFREP (see the package doc). It is an http.Handler, starts no goroutines of
// its own, and is safe for concurrent use.
type Server struct {
	flags     *flags.Current
	stats     *flags.Stats
	now       func() time.Time
	log       *slog.Logger
	maxBody   int64
	heartbeat time.Duration
	keys      [][32]byte // sha256 of each API key
	tokens    []string   // event-stream token of each API key
	limiter   *limiter
	evals     *prometheus.CounterVec
	nonce     [16]byte

	mu      sync.Mutex // serialises state changes
	state   stateRef
	closing chan struct{}
	once    sync.Once
}

var _ http.Handler = (*Server)(nil)

// New returns a Server for cfg. It starts nothing.
func New(cfg Config) *Server {
	s := &Server{
		flags:     cfg.Flags,
		stats:     cfg.Stats,
		now:       cfg.Now,
		log:       cfg.Log,
		maxBody:   cfg.MaxBody,
		heartbeat: cfg.Heartbeat,
		closing:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeat
	}
	for _, k := range cfg.APIKeys {
		s.keys = append(s.keys, sha256.Sum256([]byte(k)))
		mac := hmac.New(sha256.New, []byte(k))
		mac.Write([]byte("slipway ofrep event stream"))
		s.tokens = append(s.tokens, hex.EncodeToString(mac.Sum(nil)[:16]))
	}
	if cfg.RateLimit > 0 {
		s.limiter = newLimiter(cfg.RateLimit, cfg.Burst)
	}
	if cfg.Metrics != nil {
		s.evals = register(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_flag_evaluations_total",
			Help: "Flag evaluations served over OFREP, by flag, variant and reason.",
		}, []string{"flag", "variant", "reason"}))
	}
	// A random nonce makes ETags from an earlier process (or another replica) never match.
	_, _ = rand.Read(s.nonce[:])
	s.state.Store(&state{changed: make(chan struct{})})
	s.current()
	return s
}

// register registers c on reg, or returns the collector already registered under the same
// description (a Server rebuilt on the same registry). Other errors are programming errors.
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic("ofrep: register metrics: " + err.Error())
	}
	return c
}

// Shared header values; net/http only reads them.
var (
	hJSON        = []string{"application/json"}
	hStar        = []string{"*"}
	hExpose      = []string{"ETag, Retry-After"}
	hAllowMethod = []string{"POST, GET, OPTIONS"}
	hAllowHeader = []string{"Content-Type, If-None-Match, Authorization, X-API-Key, Last-Event-ID"}
	hMaxAge      = []string{"86400"}
	hAllowPost   = []string{"POST, OPTIONS"}
	hAllowGet    = []string{"GET, OPTIONS"}
)

// ServeHTTP serves the OFREP endpoints under /ofrep/v1/. The order: CORS headers, preflight,
// rate limit, authentication, routing, body limit, evaluation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if len(r.Header["Origin"]) > 0 {
		h["Access-Control-Allow-Origin"] = hStar
		h["Access-Control-Expose-Headers"] = hExpose
	}
	if r.Method == http.MethodOptions {
		h["Access-Control-Allow-Methods"] = hAllowMethod
		h["Access-Control-Allow-Headers"] = hAllowHeader
		h["Access-Control-Max-Age"] = hMaxAge
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if s.limiter != nil {
		if wait, ok := s.limiter.allow(clientIP(r), s.now()); !ok {
			h["Retry-After"] = []string{strconv.Itoa(wait)}
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
	}
	path := r.URL.Path
	if !strings.HasPrefix(path, pathPrefix) {
		s.writeError(w, http.StatusNotFound, "", "", "no OFREP endpoint at "+path)
		return
	}
	if path == EventsPath || path == EventsPath+"/" {
		if _, ok := s.authenticate(r); !ok {
			if _, ok = s.streamToken(r); !ok {
				s.unauthorized(w)
				return
			}
		}
		if r.Method != http.MethodGet {
			s.notAllowed(w, r, hAllowGet)
			return
		}
		s.serveEvents(w, r)
		return
	}
	key, ok := s.authenticate(r)
	if !ok {
		s.unauthorized(w)
		return
	}
	switch {
	case path == pathBulk || path == pathSingle:
		if r.Method != http.MethodPost {
			s.notAllowed(w, r, hAllowPost)
			return
		}
		s.serveBulk(w, r, key)
	case strings.HasPrefix(path, pathSingle):
		flag, err := flagKey(r)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, "", slipway.FlagGeneral, "the flag key is not a valid URL path segment")
			return
		}
		if r.Method != http.MethodPost {
			s.notAllowed(w, r, hAllowPost)
			return
		}
		s.serveSingle(w, r, flag)
	default:
		s.writeError(w, http.StatusNotFound, "", "", "no OFREP endpoint at "+path)
	}
}

// flagKey returns the URL-decoded key of a single-flag path, without one trailing slash.
func flagKey(r *http.Request) (string, error) {
	if r.URL.RawPath == "" {
		return strings.TrimSuffix(r.URL.Path[len(pathSingle):], "/"), nil
	}
	raw := r.URL.EscapedPath()
	i := strings.Index(raw, "/evaluate/flags/")
	if i < 0 {
		return strings.TrimSuffix(r.URL.Path[len(pathSingle):], "/"), nil
	}
	return url.PathUnescape(strings.TrimSuffix(raw[i+len("/evaluate/flags/"):], "/"))
}

func (s *Server) notAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header()["Allow"] = allow
	s.writeError(w, http.StatusMethodNotAllowed, "", "", "method "+r.Method+" is not allowed here; use "+allow[0][:strings.IndexByte(allow[0], ',')])
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	w.Header()["Www-Authenticate"] = []string{`Bearer realm="ofrep"`}
	w.WriteHeader(http.StatusUnauthorized)
}

// authenticate checks the request's credentials. It returns the index of the matching API
// key (-1 when no keys are configured) and whether the request may proceed.
func (s *Server) authenticate(r *http.Request) (int, bool) {
	if len(s.keys) == 0 {
		return -1, true
	}
	cred := r.Header.Get("X-API-Key")
	if cred == "" {
		auth := r.Header.Get("Authorization")
		if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			cred = strings.TrimSpace(auth[7:])
		}
	}
	if cred == "" {
		return -1, false
	}
	return s.match(sha256.Sum256([]byte(cred)), func(i int) [32]byte { return s.keys[i] })
}

// streamToken accepts an event-stream request carrying the token the bulk response handed
// out (browsers' EventSource cannot send headers).
func (s *Server) streamToken(r *http.Request) (int, bool) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		return -1, false
	}
	return s.match(sha256.Sum256([]byte(tok)), func(i int) [32]byte { return sha256.Sum256([]byte(s.tokens[i])) })
}

// match compares sum with every candidate in constant time, without stopping early.
func (s *Server) match(sum [32]byte, candidate func(int) [32]byte) (int, bool) {
	found := -1
	for i := range s.keys {
		c := candidate(i)
		if subtle.ConstantTimeCompare(sum[:], c[:]) == 1 {
			found = i
		}
	}
	return found, found >= 0
}

// clientIP is the request's peer address without the port.
func clientIP(r *http.Request) string {
	addr := r.RemoteAddr
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[:i]
	}
	return strings.Trim(addr, "[]")
}

// buffers holds response and request buffers.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// contexts holds evaluation-context maps, cleared between requests.
var contexts = sync.Pool{New: func() any { return make(map[string]any, 8) }}

// errBodyTooLarge reports a body over the limit.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads r's body into buf, up to the limit.
func (s *Server) readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return buf, errBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return buf, nil
	}
	if n := int(r.ContentLength); n > 0 && cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > s.maxBody {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readContext reads and decodes the request's context. On failure it has written the error
// response (with key, for the single endpoint) and returns false.
func (s *Server) readContext(w http.ResponseWriter, r *http.Request, buf []byte, ctx map[string]any, key string) ([]byte, bool) {
	buf, err := s.readBody(r, buf)
	switch {
	case errors.Is(err, errBodyTooLarge):
		s.writeError(w, http.StatusRequestEntityTooLarge, key, slipway.FlagInvalidContext,
			"the request body is larger than the "+strconv.FormatInt(s.maxBody, 10)+"-byte limit")
		return buf, false
	case err != nil:
		s.writeError(w, http.StatusBadRequest, key, slipway.FlagInvalidContext, "reading the request body: "+err.Error())
		return buf, false
	}
	if err := decodeRequest(buf, ctx); err != nil {
		s.writeError(w, http.StatusBadRequest, key, slipway.FlagInvalidContext, "the request body is not valid JSON: "+err.Error())
		return buf, false
	}
	return buf, true
}

// writeError writes an OFREP error body.
func (s *Server) writeError(w http.ResponseWriter, status int, key string, code slipway.FlagErrorCode, details string) {
	bp := buffers.Get().(*[]byte)
	b := appendError((*bp)[:0], key, code, details)
	s.write(w, status, b)
	*bp = b[:0]
	buffers.Put(bp)
}

// write writes a JSON body.
func (s *Server) write(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = hJSON
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		s.log.Debug("write response failed", "err", err)
	}
}
