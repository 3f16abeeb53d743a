package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/delivery"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/gitsource"
	"slipway.dev/slipway/handover"
	"slipway.dev/slipway/insights"
	"slipway.dev/slipway/metric/job"
	"slipway.dev/slipway/notify"
	kubeplatform "slipway.dev/slipway/platform/kubernetes"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

// Server defaults and environment variables.
const (
	defaultListen     = "127.0.0.1:7070"
	defaultDataDir    = ".slipway"
	defaultPlatform   = "local"
	defaultLogLevel   = "info"
	defaultReadyDelay = 2 * time.Second
	shutdownTimeout   = 10 * time.Second
	envListen         = "SLIPWAY_LISTEN"
	envData           = "SLIPWAY_DATA"
	envPlatform       = "SLIPWAY_PLATFORM"
	envLogLevel       = "SLIPWAY_LOG_LEVEL"
	envOFREPKeys      = "SLIPWAY_OFREP_KEYS"
	envTLSCert        = "SLIPWAY_TLS_CERT"
	envTLSKey         = "SLIPWAY_TLS_KEY"
	envAllowedHosts   = "SLIPWAY_ALLOWED_HOSTS"
	envAllowedOrigins = "SLIPWAY_ALLOWED_ORIGINS"
	envWebhookSecret  = "SLIPWAY_WEBHOOK_SECRET_FILE" //nolint:gosec // the name of an environment variable, not a secret
	envAdminTokenFile = "SLIPWAY_ADMIN_TOKEN_FILE"    //nolint:gosec // the name of an environment variable, not a secret
	envGitRepo        = "SLIPWAY_GIT_REPO"
	defaultGitBranch  = "main"
)

// serverConfig is the server's one configuration: flag > environment > default.
type serverConfig struct {
	listen     string
	dataDir    string
	platform   string
	logLevel   string
	readyDelay time.Duration
	poll       time.Duration
	resync     time.Duration
	// OFREP: accepted API keys (none: open), and a per-client rate limit (0: none).
	ofrepKeys  []string
	ofrepRate  float64
	ofrepBurst int
	// maxReplicas is the most replicas plan and apply accept for one app.
	maxReplicas int
	// publicMetrics serves /metrics without a token.
	publicMetrics bool
	// TLS for the API's listener; both files or neither.
	tlsCert, tlsKey string
	// insecurePlaintext allows a non-loopback listener without TLS.
	insecurePlaintext bool
	// allowedHosts are names the Host header may give besides addresses and localhost;
	// allowedOrigins are browser origins allowed besides the server's own.
	allowedHosts, allowedOrigins []string
	// adminTokenFile, when set, holds the secret of the server's admin token (a file kept
	// outside the data directory, such as a Kubernetes Secret); the server then makes no
	// DATA/admin.token.
	adminTokenFile string
	// webhookSecretFile holds the secret that signs release webhooks (POST /hooks/releases);
	// none: the endpoint is off.
	webhookSecretFile string
	// gitRepo, when set, is the repository of slipway files the server applies (package
	// gitsource): each new head of gitBranch, the files under gitPath, looked at every
	// gitPoll.
	gitRepo, gitBranch, gitPath string
	gitPoll                     time.Duration
	// kube says where the server watches slipway's custom resources.
	kube kubeFlags
	// failureHorizon is how soon after a deployment a rollback or a fix release marks it
	// failed (delivery insights).
	failureHorizon time.Duration
}

// runtimeDeps is what a platform may need from the server.
type runtimeDeps struct {
	ctx context.Context
	log *slog.Logger
	// held says this server was started by a restart in place and must not touch a process
	// until the old one has let go.
	held bool
	// target is the target of the environment the platform runs (its kubernetes cluster and
	// namespace); the server's own environment has only a kind.
	target slipway.Target
	// record commits events to the environment's store: what the platform did by itself.
	record func(ctx context.Context, evs ...slipway.Event) error
}

// platformRun is a platform and, for platforms that own goroutines, the function that runs
// them until ctx ends.
type platformRun struct {
	slipway.Platform
	run func(ctx context.Context) error
	// settled, when set, returns a channel closed once what the platform observes can be
	// decided on: the readiness of the instances it adopted at start is known. The engine
	// starts after it.
	settled func() <-chan struct{}
	// windows, when set, is where the builtin analysis provider reads what each revision
	// served; metrics are the series to serve beside the server's own on /metrics.
	windows slipway.RequestMetrics
	metrics prometheus.Gatherer
}

// platforms are the platforms the server can drive, wired explicitly.
var platforms = map[string]func(cfg serverConfig, deps runtimeDeps) (platformRun, error){
	"sim": func(cfg serverConfig, _ runtimeDeps) (platformRun, error) {
		return platformRun{Platform: sim.New(sim.Config{ReadyDelay: cfg.readyDelay, MaxOps: 1000})}, nil
	},
	"local": func(cfg serverConfig, deps runtimeDeps) (platformRun, error) {
		// The apps' traffic is served by the data plane process, which outlives this one
		// (package dataplane): found running, or started.
		exe, err := os.Executable()
		if err != nil {
			return platformRun{}, fmt.Errorf("find the executable for the data plane: %w", err)
		}
		edge, _, err := dataplane.Supervise(deps.ctx, dataplane.LaunchConfig{Dir: cfg.dataDir,
			Command: []string{exe, "dataplane", "--data", cfg.dataDir, "--log-level", cfg.logLevel},
			Log:     deps.log.With("component", "dataplane")})
		if err != nil {
			return platformRun{}, err
		}
		p := local.New(local.Config{DataDir: cfg.dataDir, Edge: edge, Log: deps.log.With("component", "local"), StartHeld: deps.held})
		return platformRun{Platform: p, run: p.Run, settled: p.Settled, windows: edge, metrics: edge}, nil
	},
	// An environment's namespace of a cluster; never the server's own environment, which has
	// no cluster to name (serverConfig.validate).
	slipway.TargetKubernetes: func(_ serverConfig, deps runtimeDeps) (platformRun, error) {
		k := deps.target.Kubernetes
		if k == nil {
			return platformRun{}, slipway.Errorf(slipway.EINVALID, "the kubernetes platform runs an Environment's apps; declare one with target kubernetes and its namespace")
		}
		rc, err := kubeplatform.RESTConfig(k.Kubeconfig, k.Context)
		if err != nil {
			return platformRun{}, err
		}
		p, err := kubeplatform.New(kubeplatform.Config{RESTConfig: rc, Namespace: k.Namespace, Log: deps.log.With("component", "kubernetes"),
			Repaired: recordRepair(deps)})
		if err != nil {
			return platformRun{}, err
		}
		return platformRun{Platform: p, run: p.Run, settled: p.Settled}, nil
	},
}

// recordRepair records each repair a platform makes by itself (an object another writer
// changed, put back) as a drift.repaired event, as the engine records the drift it repairs.
func recordRepair(deps runtimeDeps) func(app, what string) {
	return func(app, what string) {
		ev := slipway.Event{Time: time.Now(), App: app, Kind: slipway.EventDriftRepaired, Actor: slipway.ActorDrift,
			Message: "repaired drift: " + what, Reason: "another writer changed an object slipway manages; the platform put it back"}
		ctx, cancel := context.WithTimeout(deps.ctx, 5*time.Second)
		defer cancel()
		if err := deps.record(ctx, ev); err != nil {
			deps.log.Warn("recording a repair failed", "app", app, "repair", what, "err", err)
		}
	}
}

// platformNames lists the platforms the server's own environment may run on: all but
// kubernetes, which runs declared Environments only.
func platformNames() string {
	var names []string
	for n := range platforms {
		if n != slipway.TargetKubernetes {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (c serverConfig) validate() error {
	var errs []string
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		errs = append(errs, fmt.Sprintf("--listen %q is not host:port (for example %s)", c.listen, defaultListen))
	}
	switch _, ok := platforms[c.platform]; {
	case c.platform == slipway.TargetKubernetes:
		errs = append(errs, "--platform kubernetes: the server's own environment runs on local or sim; run apps on a cluster in an Environment with target kubernetes")
	case !ok:
		errs = append(errs, fmt.Sprintf("--platform %q is not a platform; use one of: %s", c.platform, platformNames()))
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err.Error())
	}
	if c.dataDir == "" {
		errs = append(errs, "--data must name a directory")
	}
	if c.maxReplicas < 1 || c.maxReplicas > slipway.MaxReplicas {
		errs = append(errs, fmt.Sprintf("--max-replicas %d is out of range; use 1 to %d", c.maxReplicas, slipway.MaxReplicas))
	}
	if c.failureHorizon <= 0 {
		errs = append(errs, fmt.Sprintf("--failure-horizon %s must be positive, like 24h", c.failureHorizon))
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, "--tls-cert and --tls-key go together: give both or neither")
	}
	if host, _, err := net.SplitHostPort(c.listen); err == nil && c.tlsCert == "" && !c.insecurePlaintext && !isLoopbackHost(host) {
		errs = append(errs, fmt.Sprintf("--listen %s is reachable from other machines: give --tls-cert and --tls-key, or --insecure-plaintext to send tokens in clear text", c.listen))
	}
	if c.gitRepo != "" && c.gitPoll <= 0 {
		errs = append(errs, fmt.Sprintf("--git-poll %v: use a positive duration like 30s", c.gitPoll))
	}
	errs = append(errs, c.kube.check()...)
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// isLoopbackHost reports whether a listen host is reachable from this machine only.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q is not a level; use debug, info, warn or error", s)
	}
	return l, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func addServerCommand(root *cobra.Command) {
	cfg := serverConfig{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the slipway server: the engine, the store and the HTTP API",
		Long: `Run the slipway server: the engine that carries rollouts through their steps, the
SQLite store in the data directory, and the HTTP API that the CLI talks to.

Platforms: local (each instance a process on this machine, behind slipway's own
traffic-splitting proxy on the app's traffic.listen address; logs and state in the data
directory) and sim (an in-memory platform whose instances become ready after
--sim-ready-delay; for trying slipway out, tests and benchmarks).

Prometheus metrics (the proxy's per-revision requests, errors and latency) are served at
/metrics beside the API.

Every API request needs a token (see slipway token --help). On first start the server
creates an admin token in DATA/admin.token (readable by its user only), which the CLI on
this machine finds by itself; with --admin-token-file it takes the admin token's secret from
that file instead (a Kubernetes Secret: docs/kubernetes.md). The API refuses requests whose Host header is not an address,
localhost or an --allowed-host (DNS rebinding), browser requests from other origins (unless
--allowed-origin), and changes not sent as application/json.

The server binds 127.0.0.1 by default. A listener other machines can reach needs
--tls-cert and --tls-key, or --insecure-plaintext to accept tokens in clear text.

On the local platform the apps' listeners and proxies run in a data plane process of their
own (slipway dataplane, started by the server, pid in DATA/dataplane.pid), so that a server
that crashes or is killed fails no request: the data plane keeps serving with its last
tables and the instances keep running; the next server on the same data directory finds
both and carries every rollout on.

The server stops cleanly on SIGINT or SIGTERM, stopping every instance and then the data
plane; rollouts resume where they were when it starts again on the same data directory. On
SIGHUP (local platform) it restarts in place without dropping a request: a new server
process from the same executable takes over its API socket and adopts the running
instances, and the old one exits. DATA/server.pid names the process serving.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			return runServer(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.listen, "listen", envOr(envListen, defaultListen), "address of the HTTP API ($"+envListen+")")
	f.StringVar(&cfg.dataDir, "data", envOr(envData, defaultDataDir), "data directory: the SQLite store and logs ($"+envData+")")
	f.StringVar(&cfg.platform, "platform", envOr(envPlatform, defaultPlatform), "platform to run apps on: "+platformNames()+" ($"+envPlatform+")")
	f.StringVar(&cfg.logLevel, "log-level", envOr(envLogLevel, defaultLogLevel), "debug, info, warn or error ($"+envLogLevel+")")
	f.DurationVar(&cfg.readyDelay, "sim-ready-delay", defaultReadyDelay, "sim platform: how long an instance takes to become ready")
	f.DurationVar(&cfg.poll, "poll", engine.DefaultPoll, "how often a rollout observes the platform while it waits")
	f.DurationVar(&cfg.resync, "resync", engine.DefaultResync, "how often every app is checked for drift")
	f.StringSliceVar(&cfg.ofrepKeys, "ofrep-key", splitList(os.Getenv(envOFREPKeys)), "OFREP: an API key clients must send (X-API-Key or Authorization: Bearer); repeat for more ($"+envOFREPKeys+", comma-separated)")
	f.Float64Var(&cfg.ofrepRate, "ofrep-rate-limit", 0, "OFREP: requests per second allowed per client IP (0: no limit; over it: 429 with Retry-After)")
	f.IntVar(&cfg.ofrepBurst, "ofrep-burst", 100, "OFREP: requests a client may send at once above the rate limit")
	f.BoolVar(&cfg.publicMetrics, "public-metrics", false, "serve /metrics without a token (by default Prometheus must send one: authorization: {credentials_file: ...})")
	f.IntVar(&cfg.maxReplicas, "max-replicas", slipway.DefaultMaxReplicas, "the most replicas plan and apply accept for one app")
	f.StringVar(&cfg.tlsCert, "tls-cert", os.Getenv(envTLSCert), "PEM certificate (chain) to serve the API over HTTPS ($"+envTLSCert+")")
	f.StringVar(&cfg.tlsKey, "tls-key", os.Getenv(envTLSKey), "PEM private key of --tls-cert ($"+envTLSKey+")")
	f.BoolVar(&cfg.insecurePlaintext, "insecure-plaintext", false, "allow a --listen address other machines can reach without TLS (tokens travel in clear text)")
	f.StringSliceVar(&cfg.allowedHosts, "allowed-host", splitList(os.Getenv(envAllowedHosts)), "a host name clients use to reach the server, besides IP addresses and localhost; repeat for more ($"+envAllowedHosts+", comma-separated)")
	f.StringVar(&cfg.adminTokenFile, "admin-token-file", os.Getenv(envAdminTokenFile), "file holding the secret of the server's admin token (slw_ and 32 or more letters, digits, - or _; a Kubernetes Secret, for example): the server accepts it as the token file-admin, revokes the file-admin tokens of earlier secrets, and makes no DATA/admin.token ($"+envAdminTokenFile+")")
	f.StringVar(&cfg.webhookSecretFile, "webhook-secret-file", os.Getenv(envWebhookSecret), "file holding the secret of release webhooks (POST /hooks/releases: GitHub's X-Hub-Signature-256, GitLab's X-Gitlab-Token, X-Slipway-Signature); none: the endpoint is off ($"+envWebhookSecret+")")
	f.DurationVar(&cfg.failureHorizon, "failure-horizon", slipway.DefaultFailureHorizon, "delivery insights: how soon after a deployment a rollback of it, or a release marked --fix, counts it failed")
	f.StringSliceVar(&cfg.allowedOrigins, "allowed-origin", splitList(os.Getenv(envAllowedOrigins)), "a browser origin (https://host:port) allowed to call the API besides the server's own; repeat for more ($"+envAllowedOrigins+", comma-separated)")
	f.StringVar(&cfg.gitRepo, "git-repo", os.Getenv(envGitRepo), "a git repository of slipway files to apply (a local path, or a URL cloned into DATA/git); each new commit on --git-branch is applied, pipeline apps released ($"+envGitRepo+"; docs/git.md)")
	f.StringVar(&cfg.gitBranch, "git-branch", defaultGitBranch, "the branch of --git-repo to apply")
	f.StringVar(&cfg.gitPath, "git-path", ".", "the directory of --git-repo that holds the files (as apply -f DIR reads it)")
	f.DurationVar(&cfg.gitPoll, "git-poll", gitsource.DefaultPoll, "how often --git-repo's branch is looked at (slipway git sync looks at once)")
	cfg.kube.register(f)
	root.AddCommand(cmd)
}

// runServer runs the server until ctx ends.
func runServer(ctx context.Context, cfg serverConfig, stdout, stderr interface{ Write([]byte) (int, error) }) error {
	level, _ := parseLevel(cfg.logLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	defer survivePipes()()
	inh, err := handover.Take()
	if err != nil {
		return err
	}
	defer inh.Close()
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := checkDataDir(cfg.dataDir); err != nil {
		return err
	}
	lock, err := lockDataDir(cfg.dataDir, inh.Lock)
	if err != nil {
		return err
	}
	inh.Lock = nil // ours now
	if lock != nil {
		defer lock.Close()
	}
	dbPath := filepath.Join(cfg.dataDir, "slipway.db")
	if err := checkStoreFile(cfg.dataDir, dbPath); err != nil {
		return err
	}
	store, err := sqlite.Open(dbPath, time.Now)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store failed", "err", err)
		}
	}()
	if err := checkStoreID(ctx, cfg.dataDir, store); err != nil {
		return err
	}
	tokens := auth.New(auth.Config{Store: store})
	var tokenPath string // the credential the CLI on this machine may find: DATA/admin.token
	if cfg.adminTokenFile != "" {
		err = ensureFileAdminToken(ctx, tokens, cfg.adminTokenFile, time.Now(), log)
	} else {
		tokenPath, err = ensureAdminToken(ctx, tokens, cfg.dataDir, log)
	}
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if host, _, _ := net.SplitHostPort(cfg.listen); !isLoopbackHost(host) {
		log.Warn("the API listens without TLS on an address other machines can reach; tokens travel in clear text", "listen", cfg.listen)
	}
	// The API's address before the platform: a server that cannot serve must not have started
	// a data plane process, which would outlive it serving nothing.
	ln, err := inh.Listen(cfg.listen)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	platform, err := platforms[cfg.platform](cfg, runtimeDeps{ctx: ctx, log: log, held: inh.Restarted(), target: slipway.Target{Kind: cfg.platform},
		record: commitEvents(store)})
	if err != nil {
		_ = ln.Close()
		return err
	}
	shared := &serverShared{cfg: cfg, log: log, tokens: tokens}
	def := newEnvServing(shared, slipway.Environment{Name: slipway.DefaultEnvironment, Target: slipway.Target{Kind: cfg.platform}}, store, platform, reg, log)
	// The environments besides the default one (kind: Environment), each with its own
	// store, platform and engine under DATA/env/NAME (envs.go).
	var current atomic.Pointer[engine.Engine]
	// Pipelines carry releases through the environments (package delivery); they run beside
	// the default environment's engine, and stop with it for a restart in place.
	var fl *fleet.Fleet
	releases := delivery.New(delivery.Config{Store: store, Measure: def.runner, Verify: job.New(), Log: log.With("component", "delivery"),
		Places: func(name string) (delivery.Place, bool) {
			env, d, st, ok := fl.Place(name)
			return delivery.Place{Environment: env, Deployer: d, State: st}, ok
		}})
	shared.releases = releases
	// Notifications follow every environment's event log (package notify).
	notifier := notify.New(notify.Config{Store: store, Log: log.With("component", "notify"), Sources: func() []notify.Source {
		srcs := []notify.Source{{Environment: slipway.DefaultEnvironment, Events: store.Events}}
		for _, name := range fl.Names() {
			if _, _, st, ok := fl.Place(name); ok {
				srcs = append(srcs, notify.Source{Environment: name, Events: st.Events})
			}
		}
		return srcs
	}})
	shared.notifications = notifier
	// Delivery figures of every environment, from their stores and the releases (package
	// insights): served by every environment's API and, as gauges, on the default one's
	// /metrics.
	reader := insights.NewReader(insights.Config{Releases: store, FailureHorizon: cfg.failureHorizon,
		Environments: func(ctx context.Context) ([]slipway.Environment, error) { return fl.Environments(ctx) },
		State: func(name string) (slipway.StateReader, bool) {
			_, _, st, ok := fl.Place(name)
			return st, ok
		}})
	shared.insights = reader
	reg.MustRegister(insights.NewCollector(reader, insights.CollectorConfig{}))
	if cfg.webhookSecretFile != "" {
		secret, err := readWebhookSecret(cfg.webhookSecretFile)
		if err != nil {
			_ = ln.Close()
			return err
		}
		shared.webhook = releases.Webhook(delivery.WebhookConfig{Secret: secret, Log: log.With("component", "webhook"),
			Events: func(ctx context.Context, evs []slipway.Event) error {
				return store.Commit(ctx, &slipway.Change{Events: evs})
			}})
	}
	fl, err = fleet.Open(ctx, fleet.Config{Store: store, Start: shared.startEnvironment(ctx),
		Default: func() slipway.Deployer { return current.Load() }, DefaultState: store, Pipelines: releases, Notifications: notifier, DefaultTarget: cfg.platform,
		Targets: environmentTargets(), MaxReplicas: cfg.maxReplicas, Log: log.With("component", "fleet")}, inh.Restarted())
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer func() {
		if err := fl.Close(); err != nil {
			log.Error("stop environments failed", "err", err)
		}
	}()
	shared.fleet = fl
	runAlongside := alongside(releases.Run, notifier.Run)
	if cfg.gitRepo != "" {
		// The git source applies through the fleet and releases through the pipelines; it
		// runs beside them, and stops with them for a restart in place.
		watcher, err := gitsource.New(gitsource.Config{Repo: cfg.gitRepo, Branch: cfg.gitBranch, Path: cfg.gitPath,
			CloneDir: gitCloneDir(cfg.dataDir, cfg.gitRepo), Poll: cfg.gitPoll, Deployer: fl, Releases: releases,
			Apps: fleetApps{fl}, Store: store, Log: log.With("component", "git")})
		if err != nil {
			_ = ln.Close()
			return err
		}
		shared.git = watcher
		runAlongside = alongside(releases.Run, notifier.Run, watcher.Run)
	}
	kube, err := kubeSource(cfg.kube, fl, store, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if kube != nil {
		runAlongside = alongside(runAlongside, kube)
	}
	newEngine := func() (*engine.Engine, http.Handler) {
		eng, h := def.newEngine(fl)
		current.Store(eng)
		return eng, h
	}

	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	// The pointers and the pid file first: a CLI started on the banner finds the credential
	// and checks that this process serves it.
	if !inh.Restarted() {
		writePIDFile(cfg.dataDir, log)
	}
	var pointers []string
	if tokenPath != "" {
		pointers = writePointers(ln.Addr(), tokenPath, log)
	}
	fmt.Fprintf(stdout, "slipway server listening on %s://%s (platform %s, data %s)\n", scheme, ln.Addr(), cfg.platform, cfg.dataDir)
	l := &lifetime{cfg: cfg, log: log, platform: platform, fleet: fl, tokens: tokens, newEngine: newEngine, alongside: runAlongside, api: ln, tls: tlsCfg, lock: lock, inh: inh, stdout: stdout, stderr: stderr}
	handedOver, err := l.run(ctx)
	if !handedOver {
		removePointers(pointers, tokenPath)
	}
	return err
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// readWebhookSecret reads the release webhooks' secret: the file's content without the
// surrounding white space, at least 16 bytes.
func readWebhookSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--webhook-secret-file: %w", err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < 16 {
		return nil, fmt.Errorf("--webhook-secret-file %s: the secret is %d bytes; use at least 16 (for example: openssl rand -hex 32)", path, len(b))
	}
	return b, nil
}

// alongside runs every one of runs until ctx ends or one fails.
func alongside(runs ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		for _, run := range runs {
			g.Go(func() error { return run(gctx) })
		}
		return g.Wait()
	}
}
