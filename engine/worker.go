package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/progress"
)

// worker owns one app while it has an active rollout: it is the only goroutine that moves
// the app's rollout on (a progress.Task of the engine's group of workers, keyed by app).
// Others wake it through the group. Its reconcile passes run on one of the engine's
// reconciler goroutines while it waits for them (Engine.runPass), one at a time, so the
// fields below belong to whichever runs the pass.
type worker struct {
	e   *Engine
	app string
	// due is when the pass handed to a reconciler was due, waited how long it waited for
	// its turn, and nx and err what it left; done says it ended.
	due    time.Time
	waited time.Duration
	nx     pass
	err    error
	done   chan struct{}
	// deleted says the app is gone from the store.
	deleted bool

	// runs are the analysis executions this worker started, by run ID.
	runs  map[string]context.CancelFunc
	runWG sync.WaitGroup
	// st and latest cache the app and its latest rollout between passes while cached is true.
	// Only this worker writes the rollout; everyone else who writes the app or the rollout
	// pokes the worker, which drops the cache (or hands it what it wrote, see seed). A stale
	// cache can never be committed: commits carry optimistic versions.
	st     slipway.AppState
	latest *slipway.Rollout
	cached bool
	// dirty says the stored state changed (Poke); seed is state a writer just committed,
	// handed over so that the next pass need not read it back; gen counts the events after
	// which a seed may no longer be the newest state: every change announced and every
	// read of the store by this worker. All three are guarded by the group's lock
	// (Engine.workers).
	dirty bool
	seed  *seed
	gen   uint64
	// revs caches the app's revisions: they are immutable, so they are read again only when
	// one the app needs is missing.
	revs map[string]slipway.Revision
	// hold is the traffic hold last applied (see Guard), and announced says a traffic.held
	// event recorded it. They live in memory only: after a restart, a notable hold still in
	// force is recorded once more.
	hold      Hold
	announced bool
	// platformErr is the last platform error recorded as an event: the same error again (a
	// retry that fails alike) is not recorded twice.
	platformErr string
}

var _ progress.Task = (*worker)(nil)

// Pass runs one reconcile pass on a reconciler goroutine (Engine.runPass) and says what the
// app's rollout waits for.
func (w *worker) Pass(ctx context.Context) (progress.Next, error) {
	if !w.e.runPass(ctx, w) {
		return progress.Next{}, ctx.Err()
	}
	// A failed pass is logged by the group (with the app) and retried after a poll.
	return progress.Next{Active: w.nx.active, WakeAt: w.nx.wakeAt, Poll: w.nx.poll}, w.err
}

// Idle stops the analysis executions this worker started: the next goroutine started for
// the app owns them.
func (w *worker) Idle() { w.stopRuns() }

// runTurn runs one reconcile pass for the worker's goroutine, which waits for done (see
// Engine.runPass).
func (w *worker) runTurn(ctx context.Context) {
	w.waited = time.Since(w.due)
	w.refresh()
	w.nx, w.err = w.reconcile(ctx)
	w.done <- struct{}{}
}

// refresh takes in what others told the worker since its last pass: a seed becomes its
// cache, a change without one drops the cache.
func (w *worker) refresh() {
	var dirty bool
	var s *seed
	w.e.workers.Do(func() {
		dirty, s = w.dirty, w.seed
		w.dirty, w.seed = false, nil
	})
	switch {
	case s != nil:
		w.st, w.latest, w.cached, w.deleted = s.st, &s.latest, true, false
		// Revisions are immutable: add the new ones to a map read whole before. A worker
		// that has none reads them all when it needs them.
		if w.revs != nil {
			for _, r := range s.revs {
				w.revs[r.ID] = r
			}
		}
	case dirty:
		w.cached = false
	}
}

// reading records that the worker reads the stored state now: no seed handed over before
// is newer than what it reads.
func (w *worker) reading() {
	w.e.workers.Do(func() {
		w.gen++
		w.seed = nil
	})
}

// pass is what one reconcile pass leaves for the next: whether the app still has an active
// rollout, when it wants to run again, and whether it waits on the platform.
type pass struct {
	active bool
	wakeAt time.Time
	poll   bool
}

// reconcile takes every transition the rollout can take now, committing each before acting
// on it, then converges the platform. It reports whether the app still has an active rollout
// and when it wants to run again.
func (w *worker) reconcile(ctx context.Context) (nx pass, err error) {
	if f := w.e.cfg.OnReconcile; f != nil {
		start := time.Now()
		defer func() { f(time.Since(start)) }()
	}
	store := w.e.cfg.Store
	st, latest, fresh := w.st, w.latest, w.cached
	defer func() {
		w.st, w.latest, w.cached = st, latest, fresh && err == nil
	}()
	// applied says this pass gave the platform a new desired state: the live world cannot
	// have caught up with it yet, so it is not judged for drift until the next pass.
	applied := false
	for range 64 {
		if !fresh {
			w.reading()
			st, err = store.App(ctx, w.app)
			if isCode(err, slipway.ENOTFOUND) {
				// The app is gone: make sure nothing of it runs (Remove is idempotent).
				w.stopRuns()
				w.deleted = true
				w.e.forget(w.app)
				if err := w.e.cfg.Platform.Remove(ctx, w.app); err != nil {
					return pass{active: true}, fmt.Errorf("remove %s: %w", w.app, err)
				}
				return pass{}, nil
			}
			w.deleted = false
			if err != nil {
				return pass{active: true}, err
			}
			if latest, err = latestRollout(ctx, store, w.app); err != nil {
				return pass{active: true}, err
			}
			fresh = true
		}
		obs, err := w.e.cfg.Platform.Observe(ctx, w.app)
		if err != nil {
			return pass{active: true}, fmt.Errorf("observe %s: %w", w.app, err)
		}
		var runs map[string]slipway.AnalysisRun
		if latest != nil && latest.Active() {
			runs, err = loadRuns(ctx, store, *latest)
			if err != nil {
				return pass{active: true}, err
			}
			now := w.e.cfg.Now()
			in := Input{App: st.Spec, Environment: w.e.cfg.Environment, Observed: obs, Runs: runs, Templates: w.e.templateMap()}
			next, eff := Next(*latest, in, now)
			if !reflect.DeepEqual(&next, latest) || !eff.Empty() {
				next, eff = w.chain(st, *latest, next, eff, in, now)
			}
			nx.wakeAt, nx.poll = eff.WakeAt, eff.Poll
			if !reflect.DeepEqual(&next, latest) || !eff.Empty() {
				c, err := w.e.transition(ctx, st, next, eff, now)
				if isCode(err, slipway.ECONFLICT) {
					fresh = false
					continue
				}
				if err != nil {
					return pass{active: true}, err
				}
				for _, id := range eff.StopRuns {
					w.cancelRun(id)
				}
				// What was just committed is what the store holds: no need to read it back.
				latest = &c.Rollouts[0]
				if len(c.Apps) > 0 {
					st = c.Apps[0]
				}
				if _, err := w.converge(ctx, st, latest, obs, false); err != nil {
					return pass{active: true}, err
				}
				applied = true
				continue
			}
		}
		released := w.hold.Held()
		changed, err := w.converge(ctx, st, latest, obs, !applied)
		if err != nil {
			return pass{active: true}, err
		}
		applied = applied || changed
		if released && !w.hold.Held() {
			// The held move was just made: observe it, so that a rollout waiting for its
			// split carries on in this pass.
			continue
		}
		w.ensureRuns(ctx, runs)
		// A hold keeps the worker observing until the move it holds back is made, rollout
		// or not.
		nx.active = (latest != nil && latest.Active()) || w.hold.Held()
		nx.poll = nx.poll || w.hold.Held()
		return nx, nil
	}
	return pass{active: true}, fmt.Errorf("reconcile %s: state kept changing underneath", w.app)
}

// maxChain bounds how many decisions one commit carries (see chain).
const maxChain = 8

// chain takes the decisions that follow prev -> next at once, while each one leaves the
// platform's desired state as it was and writes nothing but the rollout and events (an
// advance past a pause, say, is followed by the next step's weight). They are committed
// together: the platform hears of none before all are durable, and a crash before the
// commit loses none that was acted on. It returns the last state and the effects of all.
func (w *worker) chain(st slipway.AppState, prev, next slipway.Rollout, eff Effects, in Input, now time.Time) (slipway.Rollout, Effects) {
	if !hasRevisions(w.revs, st, &prev) || !hasRevisions(w.revs, st, &next) {
		return next, eff
	}
	for range maxChain - 1 {
		if len(eff.StartRuns) > 0 || len(eff.StopRuns) > 0 || eff.Stable != "" {
			return next, eff
		}
		if !sameDesired(Desired(st, &prev, w.revs), Desired(st, &next, w.revs)) {
			return next, eff
		}
		after, more := Next(next, in, now)
		if reflect.DeepEqual(&after, &next) && more.Empty() {
			// Nothing more to decide: keep when and how the last decision wants to wake.
			eff.WakeAt, eff.Poll = more.WakeAt, more.Poll
			return next, eff
		}
		more.Events = append(eff.Events, more.Events...)
		prev, next, eff = next, after, more
	}
	return next, eff
}

// sameDesired reports whether two desired states of one app, made from the same app state
// and revisions, ask the same of the platform: the same instances of the same revisions, the
// same split and preview. (Revisions and traffic come from what both were made from.)
func sameDesired(a, b slipway.Desired) bool {
	return a.Preview == b.Preview && slices.Equal(a.Split.Weights, b.Split.Weights) && a.Split.Equal(b.Split) &&
		slices.EqualFunc(a.Revisions, b.Revisions, func(x, y slipway.Placement) bool {
			return x.Revision.ID == y.Revision.ID && x.Replicas == y.Replicas
		})
}

// transition commits a decision: the rollout, the runs it starts and stops, the app's new
// stable revision, and the events, in one transaction.
func (e *Engine) transition(ctx context.Context, st slipway.AppState, next slipway.Rollout, eff Effects, now time.Time) (*slipway.Change, error) {
	c := &slipway.Change{Rollouts: []slipway.Rollout{next}, Runs: eff.StartRuns, Events: eff.Events}
	for _, id := range eff.StopRuns {
		run, err := e.cfg.Store.AnalysisRun(ctx, id)
		if isCode(err, slipway.ENOTFOUND) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !run.Phase.Terminal() {
			terminate(&run, eff.StopReason, now)
			c.Runs = append(c.Runs, run)
		}
	}
	if eff.Stable != "" && eff.Stable != st.Stable {
		st.Stable, st.UpdatedAt = eff.Stable, now
		c.Apps = append(c.Apps, st)
	}
	if err := e.commit(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// converge hands the platform the desired state, guarded against moving traffic onto a
// revision with no ready instance (Guard); it reports whether it applied anything. A hold
// that begins, changes or ends is recorded by an event before the platform hears of it. When
// the desired state is the one last applied and the live world differs, that is drift: it is
// repaired and recorded.
func (w *worker) converge(ctx context.Context, st slipway.AppState, latest *slipway.Rollout, obs slipway.Observed, detectDrift bool) (bool, error) {
	if !hasRevisions(w.revs, st, latest) {
		revs, err := revisionMap(ctx, w.e.cfg.Store, w.app)
		if err != nil {
			return false, err
		}
		w.revs = revs
	}
	d, hold := Guard(Desired(st, latest, w.revs), obs, w.revs)
	var evs []slipway.Event
	announced := w.announced && hold.Held()
	if ev, ok := w.holdEvent(hold, d.Split); ok {
		evs = append(evs, ev)
		announced = hold.Held()
	}
	last, ok := w.e.lastApplied(w.app)
	same := ok && reflect.DeepEqual(&last, &d) && len(evs) == 0 && hold.Equal(w.hold)
	if same && !detectDrift {
		// The platform was given exactly this already (earlier in the pass, as a rule);
		// whether the live world has caught up with it is for the next pass to judge.
		return false, nil
	}
	if detectDrift && ok && reflect.DeepEqual(&last, &d) {
		drift := DriftOf(d, obs)
		if !repairable(drift) && len(evs) == 0 && hold.Equal(w.hold) {
			return false, nil
		}
		if repairable(drift) {
			evs = append(evs, slipway.Event{Time: w.e.cfg.Now(), App: w.app, Kind: slipway.EventDriftRepaired, Actor: slipway.ActorDrift,
				Message: "repairing drift: " + driftSummary(drift), Reason: "the live state differs from the declared state"})
		}
	}
	if latest != nil {
		for i := range evs {
			evs[i].Rollout = latest.ID
		}
	}
	if err := w.e.commit(ctx, &slipway.Change{Events: evs}); err != nil {
		return false, err
	}
	w.hold, w.announced = hold, announced
	if err := w.e.cfg.Platform.Apply(ctx, d); err != nil {
		w.platformError(ctx, err)
		return false, fmt.Errorf("apply %s: %w", w.app, err)
	}
	w.platformErr = ""
	w.e.setApplied(w.app, d)
	return true, nil
}

// holdEvent returns the event that records the traffic hold becoming h (it was w.hold),
// if any: a hold that begins or changes when it is notable or its beginning was recorded,
// and the end of a hold whose beginning was recorded. serve is the split applied with h.
func (w *worker) holdEvent(h Hold, serve slipway.Split) (slipway.Event, bool) {
	ev := slipway.Event{Time: w.e.cfg.Now(), App: w.app, Actor: slipway.ActorEngine}
	switch {
	case h.Equal(w.hold):
		return ev, false
	case h.Held() && (h.Notable || w.announced):
		ev.Kind, ev.Message = slipway.EventTrafficHeld, h.Message()
		ev.Reason = "traffic never moves onto a revision with no ready instance while another revision has ready ones"
		return ev, true
	case !h.Held() && w.announced:
		ev.Kind = slipway.EventTrafficReleased
		ev.Message = fmt.Sprintf("traffic released: %s ready; serving %s", strings.Join(w.hold.Unready, ", "), splitString(serve))
		return ev, true
	}
	return ev, false
}

// ensureRuns keeps one execution going for each running analysis run of the rollout and
// stops the others.
func (w *worker) ensureRuns(ctx context.Context, runs map[string]slipway.AnalysisRun) {
	for id := range w.runs {
		if run, ok := runs[id]; !ok || run.Phase.Terminal() {
			w.cancelRun(id)
		}
	}
	if w.e.cfg.Analysis == nil {
		return
	}
	for id, run := range runs {
		if run.Phase.Terminal() {
			continue
		}
		if _, ok := w.runs[id]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		w.runs[id] = cancel
		w.runWG.Add(1)
		go func() {
			defer w.runWG.Done()
			if err := w.e.cfg.Analysis.Execute(rctx, id, w.poke); err != nil && rctx.Err() == nil {
				w.e.log.Warn("analysis run failed", "app", w.app, "run", id, "err", err)
			}
			w.poke()
		}()
	}
}

func (w *worker) cancelRun(id string) {
	if cancel, ok := w.runs[id]; ok {
		cancel()
		delete(w.runs, id)
	}
}

func (w *worker) stopRuns() {
	for id := range w.runs {
		w.cancelRun(id)
	}
	w.runWG.Wait()
}

func latestRollout(ctx context.Context, s slipway.StateReader, app string) (*slipway.Rollout, error) {
	rs, err := s.Rollouts(ctx, app, 1)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return &rs[0], nil
}

func loadRuns(ctx context.Context, s slipway.StateReader, r slipway.Rollout) (map[string]slipway.AnalysisRun, error) {
	runs := map[string]slipway.AnalysisRun{}
	for _, id := range []string{r.StepRun, r.BackgroundRun} {
		if id == "" {
			continue
		}
		run, err := s.AnalysisRun(ctx, id)
		if isCode(err, slipway.ENOTFOUND) {
			continue
		}
		if err != nil {
			return nil, err
		}
		runs[id] = run
	}
	return runs, nil
}

func revisionMap(ctx context.Context, s slipway.StateReader, app string) (map[string]slipway.Revision, error) {
	revs, err := s.Revisions(ctx, app)
	if err != nil {
		return nil, err
	}
	m := make(map[string]slipway.Revision, len(revs))
	for _, r := range revs {
		m[r.ID] = r
	}
	return m, nil
}

func terminate(run *slipway.AnalysisRun, reason string, now time.Time) {
	analysis.Terminate(run, reason, now)
}

// hasRevisions reports whether revs holds every revision the app's desired state names.
func hasRevisions(revs map[string]slipway.Revision, st slipway.AppState, latest *slipway.Rollout) bool {
	ids := []string{st.Stable}
	if latest != nil {
		ids = append(ids, latest.From, latest.To)
	}
	for _, id := range ids {
		if _, ok := revs[id]; id != "" && !ok {
			return false
		}
	}
	return revs != nil
}

// poke asks for a pass of this worker's app now (an analysis run moved on); the stored app
// did not change.
func (w *worker) poke() { w.e.wake(w.app, false) }

// platformError records a platform's refusal to converge the app (a forbidden write, a
// quota, a missing route: the error says what to do) as an event, once per distinct error,
// so that `slipway events` shows why a rollout does not move. The retry backs off as any
// failed pass does.
func (w *worker) platformError(ctx context.Context, err error) {
	msg := slipway.ErrorMessage(err)
	if msg == w.platformErr || ctx.Err() != nil {
		return
	}
	ev := slipway.Event{Time: w.e.cfg.Now(), App: w.app, Actor: slipway.ActorEngine, Kind: slipway.EventPlatformError,
		Message: "the platform could not converge " + w.app + ": " + msg}
	if cerr := w.e.commit(ctx, &slipway.Change{Events: []slipway.Event{ev}}); cerr == nil {
		w.platformErr = msg
	}
}
