// Package httpapi is slipway's HTTP edge: the JSON API under /api/v1, the server-sent event
// stream, and a Go Client for both. The CLI and the dashboard reach slipway only through it.
//
// Start reading at NewServer (routes), then errors.go (how domain error codes become HTTP
// statuses), stream.go (the SSE stream) and client.go.
//
// The server holds no state of its own: it decodes requests, calls the engine
// (slipway.Deployer, slipway.Operator, slipway.StatusReader) or the store
// (slipway.StateReader), and encodes the answer. It trusts nothing a client sends: bodies are
// size-limited and strictly decoded, and the engine validates every set again.
//
// An event stream lasts as long as its request. To end streams on shutdown, give the
// http.Server a BaseContext that is cancelled when the server stops: http.Server.Shutdown
// alone waits for streaming responses, which never go idle.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Defaults of Config.
const (
	DefaultEventPoll = 200 * time.Millisecond
	DefaultHeartbeat = 15 * time.Second
	// MaxBodyBytes caps a request body.
	MaxBodyBytes = 8 << 20
	// streamBatch is how many events one poll of the stream reads at most.
	streamBatch = 500
)

// Config is what a Server serves from.
type Config struct {
	// Tokens authenticates every request but GET /healthz, and serves /api/v1/tokens. When
	// nil, every such request is refused.
	Tokens slipway.TokenManager
	// AllowedHosts are the names the Host header may give besides IP addresses and
	// localhost (guard.go).
	AllowedHosts []string
	// AllowedOrigins are the browser origins (scheme://host:port) allowed besides the
	// server's own.
	AllowedOrigins []string
	// Version is the server's version, sent on every answer (VersionHeader) and by
	// /healthz; Commit is the source revision it was built from.
	Version, Commit string
	// Health, when set, says whether the server can do its work (its store can write);
	// GET /healthz answers 503 with its error.
	Health func(ctx context.Context) error
	// Backup, when set, serves GET /api/v1/backup (admin): a consistent copy of the store.
	Backup Backuper
	// Metrics, when set, serves GET /metrics (Prometheus) to any token (viewer).
	Metrics  http.Handler
	Deployer slipway.Deployer
	Operator slipway.Operator
	Status   slipway.StatusReader
	State    slipway.StateReader
	// Logs serves instance logs; nil when the platform keeps none (404 then).
	Logs slipway.LogSource
	// Environments lists the environments the server serves, with their targets (GET
	// /api/v1/environments); nil answers the default environment alone, target unknown.
	Environments func(ctx context.Context) ([]slipway.Environment, error)
	// Flags and FlagOperator serve flag management under /api/v1/flags and
	// /api/v1/flagsets (flags.go); when either is nil those routes answer 404.
	Flags        slipway.FlagReader
	FlagOperator slipway.FlagOperator
	// Ramps serves flag ramps under /api/v1/ramps and /api/v1/flags/{key}/ramp, and
	// Outcomes the outcomes apps report (POST /api/v1/flags/{key}/outcomes); each route
	// answers 404 when its field is nil (ramps.go).
	Ramps    slipway.RampOperator
	Outcomes OutcomeRecorder
	// Releases serves pipelines and releases under /api/v1/pipelines and /api/v1/releases
	// (releases.go); nil answers 404.
	Releases slipway.ReleaseOperator
	// Notifications serves /api/v1/notifications (notifications.go); nil answers 404.
	Notifications slipway.NotificationReader
	// Git serves POST /api/v1/git/sync (git.go) when the server watches a git repository;
	// nil answers 404.
	Git slipway.GitSyncer
	// Insights serves the delivery figures of every environment at GET /api/v1/insights
	// (insights.go); nil answers 404.
	Insights slipway.InsightsReader
	// Environment is the environment this API serves ("" for default); the events it
	// answers with carry it.
	Environment string
	// Log receives request failures; nil discards them.
	Log *slog.Logger
	// EventPoll is how often an event stream polls State.Events for new events
	// (DefaultEventPoll when zero).
	EventPoll time.Duration
	// Heartbeat is how often an idle event stream sends a comment line to keep proxies from
	// closing it (DefaultHeartbeat when zero).
	Heartbeat time.Duration
	// Reauth is how often an open stream checks its token again (DefaultReauth when zero).
	Reauth time.Duration
	// MaxStreams caps the event streams open at once (DefaultMaxStreams when zero), and
	// MaxStreamsPerClient those from one client address (DefaultMaxStreamsPerClient).
	MaxStreams, MaxStreamsPerClient int
}

// Server serves the slipway API. It is an http.Handler and starts no goroutines.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	hosts   map[string]bool
	origins map[string]bool
	watch   *watcher
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server for cfg; every interface of cfg but Logs, Flags and
// FlagOperator must be set.
func NewServer(cfg Config) *Server {
	if cfg.EventPoll <= 0 {
		cfg.EventPoll = DefaultEventPoll
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Reauth <= 0 {
		cfg.Reauth = DefaultReauth
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxStreamsPerClient <= 0 {
		cfg.MaxStreamsPerClient = DefaultMaxStreamsPerClient
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), hosts: hostSet(cfg.AllowedHosts), origins: map[string]bool{},
		watch: newWatcher(cfg.State, cfg.EventPoll)}
	for _, o := range cfg.AllowedOrigins {
		s.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	read := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, s.allow(slipway.PermRead, h)) }
	m.HandleFunc("GET /healthz", s.healthz)
	read("GET /api/v1/healthz", s.healthz)
	read("GET /api/v1/whoami", s.whoami)
	read("GET /api/v1/environments", s.environments)
	read("POST /api/v1/plan", s.plan)
	// apply checks each app of the set against the caller's scope (permitSet).
	m.HandleFunc("POST /api/v1/apply", s.allow(slipway.PermRead, s.apply))
	read("GET /api/v1/apps", s.apps)
	read("GET /api/v1/apps/{app}", s.app)
	read("GET /api/v1/apps/{app}/status", s.status)
	read("GET /api/v1/apps/{app}/revisions", s.revisions)
	read("GET /api/v1/apps/{app}/rollouts", s.rollouts)
	read("GET /api/v1/apps/{app}/logs", s.logs)
	for _, op := range []slipway.OperationKind{
		slipway.OpPromote, slipway.OpAbort, slipway.OpPause,
		slipway.OpResume, slipway.OpRetry, slipway.OpRollback,
	} {
		m.HandleFunc("POST /api/v1/apps/{app}/"+string(op), s.allow(slipway.PermDeploy, s.operate(op)))
	}
	read("GET /api/v1/rollouts/{id}", s.rollout)
	read("GET /api/v1/rollouts/{id}/analysisruns", s.analysisRuns)
	read("GET /api/v1/analysisruns", s.listAnalysisRuns)
	read("GET /api/v1/analysisruns/{id}", s.analysisRun)
	read("GET /api/v1/templates", s.templates)
	read("GET /api/v1/templates/{name}", s.template)
	read("GET /api/v1/events", s.events)
	read("GET /api/v1/events/stream", s.stream)
	s.tokenRoutes()
	if s.cfg.Backup != nil {
		m.HandleFunc("GET /api/v1/backup", s.allow(slipway.PermAdmin, s.backup))
	}
	if s.cfg.Metrics != nil {
		m.HandleFunc("GET /metrics", s.allow(slipway.PermRead, s.cfg.Metrics.ServeHTTP))
	}
	s.flagRoutes()
	s.rampRoutes()
	s.releaseRoutes()
	s.notificationRoutes()
	s.gitRoutes()
	s.insightsRoutes()
}

// ServeHTTP checks r (guard.go) and routes it. Unknown routes and wrong methods answer in the
// API's error shape, to authenticated callers only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Version != "" {
		w.Header().Set(VersionHeader, s.cfg.Version)
	}
	if r.URL.Path != "/healthz" {
		if r = s.guard(w, r); r == nil {
			return
		}
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// No route: learn from the mux whether it is a 404, a 405 or a path-cleaning redirect,
	// without letting it write its plain-text body.
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		WriteError(w, http.StatusMethodNotAllowed, &slipway.Error{
			Code:    CodeMethodNotAllowed,
			Message: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")),
		})
	case http.StatusNotFound, 0:
		WriteError(w, http.StatusNotFound, slipway.Errorf(slipway.ENOTFOUND, "no route %s %s", r.Method, r.URL.Path))
	default:
		s.mux.ServeHTTP(w, r)
	}
}

// statusProbe records the status a handler writes and discards the body.
type statusProbe struct {
	header http.Header
	code   int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// VersionHeader carries the server's version on every answer, so that a client can tell
// when it talks to a server of another version.
const VersionHeader = "Slipway-Version"

// HealthResponse answers GET /healthz.
type HealthResponse struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Version string `json:"version,omitempty"`
	Commit  string `json:"commit,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Health != nil {
		if err := s.cfg.Health(r.Context()); err != nil {
			msg := "internal error"
			if slipway.ErrorCode(err) == slipway.EUNAVAILABLE {
				msg = slipway.ErrorMessage(err) // says what failed (disk full, read-only), no internals
			} else {
				s.log.Error("health check failed", "err", err)
			}
			writeJSON(w, http.StatusServiceUnavailable, HealthResponse{Error: msg, Version: s.cfg.Version, Commit: s.cfg.Commit})
			return
		}
	}
	writeJSON(w, http.StatusOK, HealthResponse{OK: true, Version: s.cfg.Version, Commit: s.cfg.Commit})
}

// whoami answers with the token that authenticated the request.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	t, _ := caller(r)
	writeJSON(w, http.StatusOK, t)
}

// ApplyRequest is the body of POST /api/v1/plan and /api/v1/apply.
type ApplyRequest struct {
	Set   slipway.Set `json:"set"`
	Prune bool        `json:"prune,omitempty"`
	// Reason is a free-text note recorded on the events of the apply.
	Reason string `json:"reason,omitempty"`
}

// OperationRequest is the optional body of POST /api/v1/apps/{app}/{op}.
type OperationRequest struct {
	Full      bool   `json:"full,omitempty"`
	To        string `json:"to,omitempty"`
	WithSteps bool   `json:"withSteps,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	var req ApplyRequest
	if !s.decodeRequest(w, r, &req, &req.Reason, false) {
		return
	}
	p, err := s.cfg.Deployer.Plan(r.Context(), req.Set, slipway.ApplyOptions{Prune: req.Prune, Actor: actor(r), Reason: req.Reason})
	s.reply(w, r, p, err)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	var req ApplyRequest
	if !s.decodeRequest(w, r, &req, &req.Reason, false) {
		return
	}
	if err := s.permitSet(r, req.Set, req.Prune); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.cfg.Deployer.Apply(r.Context(), req.Set, slipway.ApplyOptions{Prune: req.Prune, Actor: actor(r), Reason: req.Reason})
	s.reply(w, r, p, err)
}

func (s *Server) operate(kind slipway.OperationKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req OperationRequest
		if !s.decodeRequest(w, r, &req, &req.Reason, true) {
			return
		}
		ro, err := s.cfg.Operator.Operate(r.Context(), slipway.Operation{
			Kind: kind, App: r.PathValue("app"), Actor: actor(r), Reason: req.Reason,
			Full: req.Full, To: req.To, WithSteps: req.WithSteps,
		})
		s.reply(w, r, ro, err)
	}
}

func (s *Server) apps(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.Apps(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.App(r.Context(), r.PathValue("app"))
	s.reply(w, r, v, err)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Status.Status(r.Context(), r.PathValue("app"))
	s.reply(w, r, v, err)
}

func (s *Server) revisions(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.Revisions(r.Context(), r.PathValue("app"))
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) rollouts(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.State.Rollouts(r.Context(), r.PathValue("app"), int(limit))
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) rollout(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.Rollout(r.Context(), r.PathValue("id"))
	s.reply(w, r, v, err)
}

func (s *Server) analysisRuns(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	// An unknown rollout is a 404, not an empty list.
	if _, err := s.cfg.State.Rollout(ctx, id); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.State.AnalysisRuns(ctx, id)
	s.reply(w, r, nonNil(v), err)
}

// listAnalysisRuns serves the runs of one rollout (?rollout=ID) or of one flag's ramps
// (?flag=KEY), oldest first: one home for every analysis run.
func (s *Server) listAnalysisRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rollout, flag := q.Get("rollout"), q.Get("flag")
	switch {
	case (rollout == "") == (flag == ""):
		s.fail(w, r, slipway.Errorf(slipway.EINVALID, "give one of rollout=ID or flag=KEY"))
	case rollout != "":
		r.SetPathValue("id", rollout)
		s.analysisRuns(w, r)
	default:
		v, err := s.cfg.State.FlagAnalysisRuns(r.Context(), flag)
		s.reply(w, r, nonNil(v), err)
	}
}

func (s *Server) analysisRun(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.AnalysisRun(r.Context(), r.PathValue("id"))
	s.reply(w, r, v, err)
}

func (s *Server) templates(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.Templates(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) template(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.State.Template(r.Context(), r.PathValue("name"))
	s.reply(w, r, v, err)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	f, err := eventFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if lim, err := intParam(r, "limit"); err != nil {
		s.fail(w, r, err)
		return
	} else {
		f.Limit = int(lim)
	}
	v, err := s.cfg.State.Events(r.Context(), f)
	s.reply(w, r, nonNil(s.stampEvents(v)), err)
}

// stampEvents marks events with the environment this API serves.
func (s *Server) stampEvents(evs []slipway.Event) []slipway.Event {
	if s.cfg.Environment == "" || s.cfg.Environment == slipway.DefaultEnvironment {
		return evs
	}
	for i := range evs {
		evs[i].Environment = s.cfg.Environment
	}
	return evs
}

// eventFilter reads app, rollout and after from the query.
func eventFilter(r *http.Request) (slipway.EventFilter, error) {
	q := r.URL.Query()
	after, err := intParam(r, "after")
	if err != nil {
		return slipway.EventFilter{}, err
	}
	return slipway.EventFilter{App: q.Get("app"), Rollout: q.Get("rollout"), After: after}, nil
}

// intParam reads a non-negative integer query parameter; 0 when absent.
func intParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, slipway.Errorf(slipway.EINVALID, "query parameter %s=%q must be a non-negative integer", name, v)
	}
	return n, nil
}

// reply writes v as 200 JSON, or err in the error shape.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, slipway.Errorf(slipway.EINTERNAL, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
