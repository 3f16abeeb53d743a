package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"slipway.dev/slipway"
)

// reconcile converges app d.App to d, in the order that keeps traffic on ready pods: the
// ReplicaSets of d's revisions first, then the pods the main Service sends to, the Services,
// the HTTPRoute, and last the ReplicaSets of revisions no longer wanted, once no traffic
// goes to them. Every step writes only what differs.
func (p *Platform) reconcile(ctx context.Context, w *wrote, d slipway.Desired) error {
	app := d.App
	for _, pl := range d.Revisions {
		if err := p.applyReplicaSet(ctx, w, p.replicaSet(app, pl)); err != nil {
			return err
		}
	}
	pods, err := p.appPods(app)
	if err != nil {
		return err
	}
	ready := map[string]int{}
	for rev, ps := range pods {
		for _, pod := range ps {
			if pod.DeletionTimestamp == nil && podReady(pod) {
				ready[rev]++
			}
		}
	}
	current := ""
	if svc, err := p.services.Services(p.ns).Get(serviceName(app, roleStable)); err == nil {
		current = svc.Spec.Selector[LabelRevision]
	}
	pl := decide(d, current, ready)

	// The pods that serve, before the main Service selects them.
	if pl.shared {
		for rev, ps := range pods {
			label, unlabel := servingPods(ps, pl.serving[rev])
			for _, pod := range label {
				if err := p.labelServing(ctx, w, pod, true); err != nil {
					return err
				}
			}
			for _, pod := range unlabel {
				if err := p.labelServing(ctx, w, pod, false); err != nil {
					return err
				}
			}
		}
	}

	port := func(rev string) int {
		for _, x := range d.Revisions {
			if x.Revision.ID == rev && x.Revision.Spec.Container != nil {
				return x.Revision.Spec.Container.Port
			}
		}
		return 0
	}
	bySel := func(rev string) map[string]string {
		if rev == "" {
			return nil
		}
		return map[string]string{LabelApp: app, LabelRevision: rev}
	}
	mainSel := bySel(pl.stable)
	if pl.shared {
		mainSel = map[string]string{LabelApp: app, LabelServing: "true"}
	}
	ann := map[string]string{annotationSplit: splitAnnotation(d.Split)}
	if r := d.Traffic.Route; r != nil {
		ann[annotationRoute] = p.routeKey(*r)
	}
	svcs := []struct {
		r    role
		sel  map[string]string
		port int
		ann  map[string]string
	}{
		{roleMain, mainSel, port(pl.stable), ann},
		{roleStable, bySel(pl.stable), port(pl.stable), nil},
		{roleCanary, bySel(pl.canary), port(pl.canary), nil},
		{rolePreview, bySel(pl.preview), port(pl.preview), nil},
	}
	for _, s := range svcs {
		if err := p.applyService(ctx, w, p.service(app, s.r, s.sel, s.port, s.ann)); err != nil {
			return err
		}
	}

	if old, ok := p.routeOf(app); ok && (d.Traffic.Route == nil || p.routeKey(*d.Traffic.Route) != p.routeKey(old)) {
		if err := p.releaseRoute(ctx, w, app, old); err != nil {
			return err
		}
	}
	if r := d.Traffic.Route; r != nil {
		if err := p.applyRoute(ctx, w, app, *r, pl, d.Split.Routes); err != nil {
			return err
		}
	}

	rss, err := p.appReplicaSets(app)
	if err != nil {
		return err
	}
	for _, rs := range rss {
		if !d.Places(rs.Labels[LabelRevision]) {
			if err := p.deleteReplicaSet(ctx, w, rs); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitAnnotation writes the weights of s above 0 as rev=weight, comma-separated.
func splitAnnotation(s slipway.Split) string {
	var parts []string
	for _, w := range s.Weights {
		if w.Weight > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", w.Revision, w.Weight))
		}
	}
	return strings.Join(parts, ",")
}

// parseSplitAnnotation reads what splitAnnotation wrote; it skips what it cannot read.
func parseSplitAnnotation(s string) []slipway.Weight {
	var out []slipway.Weight
	for part := range strings.SplitSeq(s, ",") {
		rev, w, ok := strings.Cut(part, "=")
		var n int
		if !ok || rev == "" || json.Unmarshal([]byte(w), &n) != nil || n <= 0 {
			continue
		}
		out = append(out, slipway.Weight{Revision: rev, Weight: n})
	}
	return out
}

// routeKey is the namespace/name of r, its namespace defaulting to the platform's.
func (p *Platform) routeKey(r slipway.RouteRef) string {
	ns := r.Namespace
	if ns == "" {
		ns = p.ns
	}
	return ns + "/" + r.Name
}

// routeOf returns the HTTPRoute slipway last edited for app, as its main Service records
// it.
func (p *Platform) routeOf(app string) (slipway.RouteRef, bool) {
	svc, err := p.services.Services(p.ns).Get(serviceName(app, roleMain))
	if err != nil {
		return slipway.RouteRef{}, false
	}
	return parseRouteKey(svc.Annotations[annotationRoute])
}

func parseRouteKey(s string) (slipway.RouteRef, bool) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" {
		return slipway.RouteRef{}, false
	}
	return slipway.RouteRef{Namespace: ns, Name: name}, true
}

// mainService returns app's main Service from the cache (nil when it has none).
func (p *Platform) mainService(app string) (*corev1.Service, error) {
	svc, err := p.services.Services(p.ns).Get(serviceName(app, roleMain))
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read service %s: %w", app, err)
	}
	return svc, nil
}
