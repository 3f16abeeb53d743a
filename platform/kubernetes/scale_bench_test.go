package kubernetes_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/platform/kubernetes"
	"slipway.dev/slipway/slipwaytest/kubetest"
	"slipway.dev/slipway/sqlite"
)

var (
	benchApps = flag.Int("kube-apps", 1000, "BenchmarkKubeRollouts: how many apps, each with one rollout in flight")
	benchIdle = flag.Duration("kube-idle", time.Minute, "BenchmarkKubeRollouts: how long to count requests while nothing changes")
	benchRecs = flag.Int("kube-reconcilers", 0, "BenchmarkKubeRollouts: engine.Config.Reconcilers (0: the engine's default, as the server runs it)")
)

// benchEnv is the environment of the benchmark's apps.
const benchEnv = "bench"

// BenchmarkKubeRollouts runs slipway as its server runs an Environment with target
// kubernetes (the engine, a SQLite store and the kubernetes platform, with the client
// configuration a kubeconfig gives) against a test cluster of its own (kubetest: a real API
// server, controller manager and scheduler, with kwok making pods Ready), with -kube-apps
// apps (1,000 by default) of 2 replicas each. v1 of every app is deployed first; then v2 is
// applied in 100 applies 50 ms apart, a canary of setWeight 20, pause 8s, setWeight 50,
// pause 8s, and the benchmark waits until every rollout completed. It reports, for the v2
// rollouts:
//
//   - how long an Apply takes, from the engine handing the platform a new desired state
//     until it returns with its writes made and in its caches (p50, p99), how long until
//     Observe first shows a split asked for, and the engine's reconcile passes (as
//     BenchmarkConcurrentRollouts in package engine does);
//   - the API requests made per rollout and per Apply (one Apply per change of what the
//     engine wants of the platform: a rollout's steps), as reads (GET, LIST), writes (POST,
//     PUT, PATCH, DELETE) and watches, counted by a RoundTripper around the platform's
//     client; requests made inside an Apply are told from those of the informers and the
//     platform's background worker;
//   - the requests made in -kube-idle (a minute by default) after the rollouts completed,
//     while nothing changes: without polling, none beyond the informers' watches.
//
// "route" splits each app by the weights of an HTTPRoute of its own; "pods" has no route,
// so the platform splits by the ratio of pods the main Service selects (labelling pods).
//
//	go test -run '^$' -bench BenchmarkKubeRollouts -benchtime 1x -timeout 60m ./platform/kubernetes/
//
// (make bench-kube). It needs the test cluster's binaries (scripts/kube-up.sh build).
func BenchmarkKubeRollouts(b *testing.B) {
	for _, mode := range []string{"route", "pods"} {
		b.Run(fmt.Sprintf("%d/%s", *benchApps, mode), func(b *testing.B) {
			for b.Loop() {
				runKubeScale(b, *benchApps, mode == "route")
			}
		})
	}
}

func runKubeScale(b *testing.B, n int, routed bool) {
	k := kubetest.Start(b)
	ns := k.Namespace(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Logf("load average at the start: %s", loadAverage())

	if routed {
		gw, err := gateway.NewForConfig(k.Config)
		if err != nil {
			b.Fatal(err)
		}
		e := env{cfg: k.Config, ns: ns, gw: gw, k: k}
		for i := range n {
			name := benchApp(i)
			if err := e.route(ctx, name, []gwv1.HTTPRouteRule{pathRule("/", backend(name+"-stable", 1))}); err != nil {
				b.Fatal(err)
			}
		}
	}

	// The client configuration the server makes of an Environment's kubeconfig, counted.
	rc, err := kubernetes.RESTConfig(k.Kubeconfig, "")
	if err != nil {
		b.Fatal(err)
	}
	api := &apiCount{trace: benchApp(0)}
	defer api.close()
	kp, err := kubernetes.New(kubernetes.Config{RESTConfig: api.config(rc), Namespace: ns})
	if err != nil {
		b.Fatal(err)
	}
	p := newTimedPlatform(kp, api)
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- kp.Run(pctx) }()
	defer func() {
		pcancel()
		if err := <-pdone; err != nil {
			b.Error(err)
		}
	}()
	select {
	case <-kp.Settled():
	case err := <-pdone:
		b.Fatalf("platform: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("the platform's caches were not filled within a minute")
	}

	b.Logf("caches filled; requests: %s", api.snapshot())

	st, err := sqlite.Open(filepath.Join(b.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	pass, turn := &samples{}, &samples{}
	eng := engine.New(engine.Config{Store: st, Platform: p, Environment: benchEnv, Target: slipway.TargetKubernetes,
		Reconcilers: *benchRecs, OnReconcile: pass.add, OnReconcileTurn: func(_, t time.Duration) { turn.add(t) }})
	ectx, ecancel := context.WithCancel(ctx)
	edone := make(chan error, 1)
	go func() { edone <- eng.Run(ectx) }()
	defer func() {
		ecancel()
		if err := <-edone; err != nil {
			b.Error(err)
		}
	}()

	set := func(version string, from, to int) slipway.Set {
		var s slipway.Set
		for i := from; i < to; i++ {
			s.Apps = append(s.Apps, kubeApp(benchApp(i), version, routed))
		}
		return s
	}
	// waitAll waits until the rollouts numbered number of every app completed, reading
	// only new events, and counts the events by kind.
	var seq int64
	var kinds, drifts map[string]int
	waitAll := func(number int) time.Duration {
		start := time.Now()
		suffix := "-" + strconv.Itoa(number)
		done := 0
		kinds, drifts = map[string]int{}, map[string]int{}
		for done < n {
			evs, err := st.Events(ctx, slipway.EventFilter{After: seq, Limit: 5000})
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range evs {
				seq = e.Seq
				kinds[e.Kind]++
				if e.Kind == slipway.EventDriftRepaired {
					drifts[revisionID.ReplaceAllString(e.Message, "REV")]++
				}
				switch {
				case e.Kind == slipway.EventRolloutCompleted && strings.HasSuffix(e.Rollout, suffix):
					done++
				case e.Kind == slipway.EventRolloutAborted:
					b.Fatalf("rollout %s aborted: %s", e.Rollout, e.Message)
				}
			}
			if time.Since(start) > 20*time.Minute {
				b.Fatalf("%d of %d rollouts completed after 20 minutes", done, n)
			}
			if len(evs) < 5000 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		return time.Since(start)
	}

	// v1 everywhere, in one apply.
	before := api.snapshot()
	if _, err := eng.Apply(ctx, set("v1", 0, n), slipway.ApplyOptions{Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	deployed := waitAll(1)
	b.Logf("v1 of %d apps deployed in %.1f s; requests: %s; events: %v; drift: %v", n, deployed.Seconds(), api.snapshot().since(before), kinds, drifts)

	// v2: one canary per app, applied in waves as independent deploys arrive.
	for _, s := range []*samples{pass, turn, p.apply, p.visible} {
		s.start()
	}
	appliesBefore := p.appliesSoFar()
	before = api.snapshot()
	start := time.Now()
	waves := min(100, n)
	for w := range waves {
		if w > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := eng.Apply(ctx, set("v2", w*n/waves, (w+1)*n/waves), slipway.ApplyOptions{Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	applyTook := time.Since(start)
	act, err := st.ActiveRollouts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	inFlight := len(act)
	took := waitAll(2) + applyTook
	rollout := api.snapshot().since(before)
	applies := p.appliesSoFar() - appliesBefore
	b.Logf("v2 rolled out to %d apps in %.1f s, %d Applies; requests: %s; events: %v; drift: %v", n, took.Seconds(), applies, rollout, kinds, drifts)
	fmt.Fprintf(os.Stderr, "the Applies of %s (v1 and v2):\n%s\n", benchApp(0), p.traceOf())

	// Nothing changes from here on, once the cluster has deleted v1's pods and the
	// platform's informers have seen it.
	settleStart := time.Now()
	for {
		pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelManagedBy + "=" + kubernetes.ManagedBy})
		if err != nil {
			b.Fatal(err)
		}
		if len(pods.Items) == 2*n || time.Since(settleStart) > 5*time.Minute {
			b.Logf("%d pods left %.1f s after the last rollout completed", len(pods.Items), time.Since(settleStart).Seconds())
			break
		}
		time.Sleep(time.Second)
	}
	time.Sleep(5 * time.Second)
	before = api.snapshot()
	appliesBefore = p.appliesSoFar()
	passesBefore := pass.len()
	time.Sleep(*benchIdle)
	idle := api.snapshot().since(before)
	idleApplies := p.appliesSoFar() - appliesBefore
	b.Logf("idle for %s: %d Applies, %d reconcile passes; requests: %s", *benchIdle, idleApplies, pass.len()-passesBefore, idle)
	b.Logf("load average at the end: %s", loadAverage())

	yes, no := true, false
	perMin := func(x int) float64 { return float64(x) / benchIdle.Minutes() }
	b.ReportMetric(p.apply.quantile(0.50), "p50-apply-ms")
	b.ReportMetric(p.apply.quantile(0.99), "p99-apply-ms")
	b.ReportMetric(p.visible.quantile(0.50), "p50-visible-ms")
	b.ReportMetric(p.visible.quantile(0.99), "p99-visible-ms")
	b.ReportMetric(pass.quantile(0.50), "p50-reconcile-ms")
	b.ReportMetric(pass.quantile(0.99), "p99-reconcile-ms")
	b.ReportMetric(turn.quantile(0.50), "p50-turn-ms")
	b.ReportMetric(turn.quantile(0.99), "p99-turn-ms")
	b.ReportMetric(float64(applies)/float64(n), "applies/rollout")
	b.ReportMetric(float64(rollout.sum("write", &yes))/float64(applies), "writes/apply")
	b.ReportMetric(float64(rollout.sum("read", &yes))/float64(applies), "reads/apply")
	b.ReportMetric(float64(rollout.sum("write", nil))/float64(n), "writes/rollout")
	b.ReportMetric(float64(rollout.sum("write", &no))/float64(n), "bg-writes/rollout")
	b.ReportMetric(float64(rollout.sum("read", nil))/float64(n), "reads/rollout")
	b.ReportMetric(float64(rollout.sum("watch", nil)), "watches")
	b.ReportMetric(perMin(idle.sum("read", nil)+idle.sum("write", nil)), "idle-requests/min")
	b.ReportMetric(perMin(idle.sum("watch", nil)), "idle-watches/min")
	b.ReportMetric(float64(inFlight), "in-flight-at-last-apply")
	b.ReportMetric(took.Seconds(), "all-completed-s")
}

// revisionID matches a revision's ID in an event's message.
var revisionID = regexp.MustCompile(`\b[0-9a-f]{12}\b`)

// benchApp names the i-th app of the benchmark.
func benchApp(i int) string { return fmt.Sprintf("app-%04d", i) }

// kubeApp is an app of the benchmark at version: 2 replicas of a container, split by its
// own HTTPRoute (named after it) when routed.
func kubeApp(name, version string, routed bool) slipway.App {
	pause := &slipway.PauseStep{Duration: slipway.Duration(8 * time.Second)}
	w20, w50 := 20, 50
	c := slipway.ContainerSpec{Image: "registry.example/web:" + version, Port: 8080,
		Resources: &slipway.Resources{Requests: map[string]slipway.Quantity{"cpu": "10m", "memory": "16Mi"}}}
	a := slipway.App{Name: name, Environment: benchEnv, Replicas: 2, Version: version, Container: &c,
		Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{
			{SetWeight: &w20}, {Pause: pause}, {SetWeight: &w50}, {Pause: pause},
		}}}}
	if routed {
		a.Traffic.Route = &slipway.RouteRef{Name: name}
	}
	return a
}

// loadAverage returns the machine's load averages (1, 5 and 15 minutes).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
