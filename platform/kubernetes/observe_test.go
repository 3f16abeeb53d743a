package kubernetes_test

import (
	"fmt"
	"sync"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
)

// TestPlatform_ObserveRightAfterApply: Observe, called as soon as Apply returns, reports
// what Apply wrote: new apps' revisions with as many instances as asked for (pods the
// cluster is still making are pending), then each app's new canary revision beside its
// stable one, then the canary's weight. The engine, which observes right after it applies,
// finds nothing missing to repair. The apps step at once, so that the watch events of
// their writes queue up behind each other as they do under load.
func TestPlatform_ObserveRightAfterApply(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, nil)
	const apps = 20
	// The second step writes nothing but the canary's new ReplicaSet, as the engine's
	// first Apply of a canary does while its pods are not ready: the write whose watch
	// event Apply must wait for.
	steps := func(app string) []slipway.Desired {
		v1, v2 := revisions(app)
		return []slipway.Desired{
			{App: app, Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100)},
			{App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: weights(v1, 100)},
			{App: app, Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: weights(v2, 20, v1, 80)},
		}
	}
	for i := range 3 {
		var wg sync.WaitGroup
		errs := make(chan error, apps)
		for a := range apps {
			d := steps(fmt.Sprintf("web-%02d", a))[i]
			wg.Go(func() {
				if err := p.Apply(t.Context(), d); err != nil {
					errs <- err
					return
				}
				obs, err := p.Observe(t.Context(), d.App)
				if err != nil {
					errs <- err
					return
				}
				for _, pl := range d.Revisions {
					if n := len(obs.Revision(pl.Revision.ID).Instances); n != pl.Replicas {
						errs <- fmt.Errorf("step %d: right after Apply, %s's revision %s has %d instances, want %d: %+v", i, d.App, pl.Revision.Version, n, pl.Replicas, obs.Revisions)
					}
				}
				for _, dr := range engine.DriftOf(d, obs) {
					if dr.Kind == slipway.DriftMissing || dr.Kind == slipway.DriftExtra {
						errs <- fmt.Errorf("step %d: right after Apply, the engine would repair %s: %s", i, d.App, dr.Message)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		for a := range apps {
			d := steps(fmt.Sprintf("web-%02d", a))[i]
			want := map[string]int{}
			for _, pl := range d.Revisions {
				want[pl.Revision.ID] = pl.Replicas
			}
			converged(t, p, d.App, want, d.Split)
		}
	}
}
