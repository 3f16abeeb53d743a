package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"slipway.dev/slipway"
)

// An HTTPRoute is the user's. Its rules list is atomic to server-side apply (one owner for
// the whole list), so slipway applies the whole list, made from the live one with only its
// own parts changed: in each rule with a backend that is the app's stable Service, the
// weight of that backend and of the app's canary Service (added beside it, with the same
// port); and rules named slipway.APP.ROUTE.N, one copy of each such rule per header route
// with the route's header matches added. Everything else (other rules, matches, filters,
// timeouts, other backends) is applied back as found.

// maxRules is how many rules an HTTPRoute may have.
const maxRules = 16

// routesAnnotation is the HTTPRoute annotation that holds app's header routes as JSON, so
// that Observe reports their matches as they were asked for.
func routesAnnotation(app string) string { return "routes.slipway.dev/" + app }

// ruleName names the copy, for header route route of app, of the n-th rule that sends to
// the app.
func ruleName(app, route string, n int) gwv1.SectionName {
	return gwv1.SectionName(fmt.Sprintf("slipway.%s.%s.%d", app, route, n))
}

// ownRule reports whether r is a rule slipway added for app, and for which header route.
func ownRule(app string, r gwv1.HTTPRouteRule) (route string, n int, ok bool) {
	if r.Name == nil {
		return "", 0, false
	}
	rest, ok := strings.CutPrefix(string(*r.Name), "slipway."+app+".")
	if !ok {
		return "", 0, false
	}
	route, idx, ok := strings.Cut(rest, ".")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(idx)
	return route, n, err == nil
}

// refersTo reports whether ref is the Service name in namespace ns (the route's namespace
// being routeNS).
func refersTo(ref gwv1.BackendObjectReference, name, ns, routeNS string) bool {
	if ref.Group != nil && *ref.Group != "" || ref.Kind != nil && *ref.Kind != "Service" || string(ref.Name) != name {
		return false
	}
	refNS := routeNS
	if ref.Namespace != nil {
		refNS = string(*ref.Namespace)
	}
	return refNS == ns
}

// headerRule is a header route as rules: its name, the Service it sends to, and its header
// matches.
type headerRule struct {
	name    string
	service string
	headers []gwv1.HTTPHeaderMatch
}

// editRules returns live with app's parts set: the stable and canary backends' weights in
// every rule that sends to the stable Service, and one rule per header route and such rule.
// With release, it takes app's parts out instead: its rules and canary backends. It fails
// when no rule sends to the stable Service, or the rules would be too many.
func editRules(live []gwv1.HTTPRouteRule, app, ns, routeNS string, stableWeight, canaryWeight int, headers []headerRule, release bool) ([]gwv1.HTTPRouteRule, error) {
	stable, canary := serviceName(app, roleStable), serviceName(app, roleCanary)
	var out []gwv1.HTTPRouteRule
	sources := 0
	for _, r := range live {
		if _, _, ok := ownRule(app, r); ok {
			continue
		}
		si := -1
		for i, b := range r.BackendRefs {
			if refersTo(b.BackendObjectReference, stable, ns, routeNS) {
				si = i
				break
			}
		}
		if si < 0 {
			out = append(out, *r.DeepCopy())
			continue
		}
		r = *r.DeepCopy()
		var refs []gwv1.HTTPBackendRef
		for _, b := range r.BackendRefs {
			if !refersTo(b.BackendObjectReference, canary, ns, routeNS) {
				refs = append(refs, b)
			}
		}
		if !release {
			ref := *r.BackendRefs[si].DeepCopy()
			for i := range refs {
				if refersTo(refs[i].BackendObjectReference, stable, ns, routeNS) {
					c := *refs[i].DeepCopy()
					c.Name = gwv1.ObjectName(canary)
					c.Weight = int32Ptr(canaryWeight)
					refs[i].Weight = int32Ptr(stableWeight)
					refs = append(refs[:i+1], append([]gwv1.HTTPBackendRef{c}, refs[i+1:]...)...)
					break
				}
			}
			for _, h := range headers {
				out = append(out, headerCopy(r, ref, app, h, sources))
			}
		}
		r.BackendRefs = refs
		out = append(out, r)
		sources++
	}
	if sources == 0 && !release {
		return nil, slipway.Errorf(slipway.EINVALID, "no rule of the HTTPRoute sends to Service %s (namespace %s); point the rules that should split the app's traffic at it", stable, ns)
	}
	if len(out) > maxRules {
		return nil, slipway.Errorf(slipway.EINVALID, "the HTTPRoute would have %d rules, more than the %d it may have (each header route copies every rule that sends to %s); use fewer header routes or rules", len(out), maxRules, stable)
	}
	return out, nil
}

// headerCopy is the rule for header route h copied from src, the n-th rule that sends to
// the app: src's matches each with h's headers added (replacing a header of the same name),
// its filters and timeouts, and one backend, h's Service, like ref.
func headerCopy(src gwv1.HTTPRouteRule, ref gwv1.HTTPBackendRef, app string, h headerRule, n int) gwv1.HTTPRouteRule {
	r := *src.DeepCopy()
	name := ruleName(app, h.name, n)
	r.Name = &name
	b := *ref.DeepCopy()
	b.Name = gwv1.ObjectName(h.service)
	b.Weight = int32Ptr(1)
	r.BackendRefs = []gwv1.HTTPBackendRef{b}
	if len(r.Matches) == 0 {
		r.Matches = []gwv1.HTTPRouteMatch{{}}
	}
	for i := range r.Matches {
		m := &r.Matches[i]
		var kept []gwv1.HTTPHeaderMatch
		for _, x := range m.Headers {
			clash := false
			for _, y := range h.headers {
				clash = clash || strings.EqualFold(string(x.Name), string(y.Name))
			}
			if !clash {
				kept = append(kept, x)
			}
		}
		m.Headers = append(kept, h.headers...)
	}
	return r
}

// headerMatches turns a header route's matches into HTTPRoute header matches. A cookie is a
// regular expression over the Cookie header, and so is a header's prefix.
func headerMatches(ms []slipway.HeaderMatch) []gwv1.HTTPHeaderMatch {
	exact, re := gwv1.HeaderMatchExact, gwv1.HeaderMatchRegularExpression
	var out []gwv1.HTTPHeaderMatch
	for _, m := range ms {
		if m.Cookie != "" {
			v := regexp.QuoteMeta(m.Exact) + `(;|$)`
			switch {
			case m.Prefix != "":
				v = regexp.QuoteMeta(m.Prefix) + `[^;]*`
			case m.Regex != "":
				v = `(` + m.Regex + `)`
			}
			out = append(out, gwv1.HTTPHeaderMatch{Type: &re, Name: "Cookie", Value: `(^|;\s*)` + regexp.QuoteMeta(m.Cookie) + `=` + v})
			continue
		}
		switch {
		case m.Exact != "":
			out = append(out, gwv1.HTTPHeaderMatch{Type: &exact, Name: gwv1.HTTPHeaderName(m.Header), Value: m.Exact})
		case m.Prefix != "":
			out = append(out, gwv1.HTTPHeaderMatch{Type: &re, Name: gwv1.HTTPHeaderName(m.Header), Value: `^` + regexp.QuoteMeta(m.Prefix)})
		default:
			out = append(out, gwv1.HTTPHeaderMatch{Type: &re, Name: gwv1.HTTPHeaderName(m.Header), Value: m.Regex})
		}
	}
	return out
}

func int32Ptr(n int) *int32 {
	v := int32(n)
	return &v
}

// routeCache is the informer of the HTTPRoutes of one namespace.
type routeCache struct {
	factory gwinformers.SharedInformerFactory
	lister  gwlisters.HTTPRouteLister
}

// routeLister returns the HTTPRoute cache of namespace ns, starting its informer on first
// use. It fails, saying what to do, when the cluster has no Gateway API or slipway may not
// read its routes there.
func (p *Platform) routeLister(ctx context.Context, ns string) (gwlisters.HTTPRouteNamespaceLister, error) {
	p.mu.Lock()
	rc := p.routes[ns]
	p.mu.Unlock()
	if rc == nil {
		if _, err := p.kube.Discovery().ServerResourcesForGroupVersion(gwv1.GroupVersion.String()); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, slipway.Errorf(slipway.EINVALID, "the cluster has no Gateway API (%s HTTPRoute); install its CRDs, or remove spec.traffic.route to split by instances", gwv1.GroupVersion)
			}
			return nil, apiError(err, "discover", "HTTPRoute", ns, "")
		}
		if _, err := p.gw.GatewayV1().HTTPRoutes(ns).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return nil, apiError(err, "list", "HTTPRoute", ns, "")
		}
		f := gwinformers.NewSharedInformerFactoryWithOptions(p.gw, 0, gwinformers.WithNamespace(ns))
		inf := f.Gateway().V1().HTTPRoutes()
		if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    p.nudgeRoute,
			UpdateFunc: func(_, obj any) { p.nudgeRoute(obj) },
			DeleteFunc: p.nudgeRoute,
		}); err != nil {
			return nil, fmt.Errorf("watch HTTPRoutes of %s: %w", ns, err)
		}
		rc = &routeCache{factory: f, lister: inf.Lister()}
		p.mu.Lock()
		if prev := p.routes[ns]; prev != nil {
			rc = prev
		} else {
			p.routes[ns] = rc
			f.Start(p.runCtx.Done())
		}
		p.mu.Unlock()
	}
	synced := rc.factory.WaitForCacheSync(ctx.Done())
	for _, ok := range synced {
		if !ok {
			return nil, fmt.Errorf("HTTPRoutes of %s not read: %w", ns, ctx.Err())
		}
	}
	return rc.lister.HTTPRoutes(ns), nil
}

// stopRoutes stops the HTTPRoute informers.
func (p *Platform) stopRoutes() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rc := range p.routes {
		rc.factory.Shutdown()
	}
}

// nudgeRoute queues the apps whose desired state names the route.
func (p *Platform) nudgeRoute(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	rt, ok := obj.(*gwv1.HTTPRoute)
	if !ok {
		return
	}
	key := rt.Namespace + "/" + rt.Name
	p.mu.Lock()
	var apps []string
	for app, d := range p.desired {
		if r := d.Traffic.Route; r != nil && p.routeKey(*r) == key {
			apps = append(apps, app)
		}
	}
	p.mu.Unlock()
	for _, app := range apps {
		p.queue.Add(app)
	}
}

// route reads HTTPRoute ref from the cache, with the namespace it is in (the platform's
// when ref names none); a missing route is a NotFound error.
func (p *Platform) route(ctx context.Context, ref slipway.RouteRef) (string, *gwv1.HTTPRoute, error) {
	ns := ref.Namespace
	if ns == "" {
		ns = p.ns
	}
	lister, err := p.routeLister(ctx, ns)
	if err != nil {
		return ns, nil, err
	}
	live, err := lister.Get(ref.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		err = fmt.Errorf("read HTTPRoute %s/%s: %w", ns, ref.Name, err)
	}
	return ns, live, err
}

// applyRoute sets app's parts of HTTPRoute ref for plan pl and header routes routes, when
// they differ from what the route holds.
func (p *Platform) applyRoute(ctx context.Context, w *wrote, app string, ref slipway.RouteRef, pl plan, routes []slipway.Route) error {
	ns, live, err := p.route(ctx, ref)
	if apierrors.IsNotFound(err) {
		return slipway.Errorf(slipway.ENOTFOUND, "HTTPRoute %s/%s, which app %s names in spec.traffic.route, does not exist; create it with a rule whose backend is Service %s, or remove route", ns, ref.Name, app, serviceName(app, roleStable))
	}
	if err != nil {
		return err
	}
	var hs []headerRule
	for _, rt := range routes {
		var svc string
		switch rt.Revision {
		case pl.canary:
			svc = serviceName(app, roleCanary)
		case pl.stable:
			svc = serviceName(app, roleStable)
		case pl.preview:
			svc = serviceName(app, rolePreview)
		default:
			return slipway.Errorf(slipway.EINVALID, "header route %s sends to revision %s, which is neither the stable, canary nor preview revision of %s", rt.Name, rt.Revision, app)
		}
		hs = append(hs, headerRule{name: rt.Name, service: svc, headers: headerMatches(rt.Match)})
	}
	rules, err := editRules(live.Spec.Rules, app, p.ns, ns, pl.stableWeight, pl.canaryWeight, hs, false)
	if err != nil {
		return fmt.Errorf("HTTPRoute %s/%s: %w", ns, ref.Name, err)
	}
	ann := ""
	if len(routes) > 0 {
		b, err := json.Marshal(routes)
		if err != nil {
			return fmt.Errorf("header routes of %s: %w", app, err)
		}
		ann = string(b)
	}
	return p.writeRoute(ctx, w, live, app, rules, ann)
}

// releaseRoute takes app's parts out of HTTPRoute ref: its header rules and canary
// backends. A route that is gone needs nothing.
func (p *Platform) releaseRoute(ctx context.Context, w *wrote, app string, ref slipway.RouteRef) error {
	ns, live, err := p.route(ctx, ref)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	rules, err := editRules(live.Spec.Rules, app, p.ns, ns, 0, 0, nil, true)
	if err != nil {
		return fmt.Errorf("HTTPRoute %s/%s: %w", ns, ref.Name, err)
	}
	return p.writeRoute(ctx, w, live, app, rules, "")
}

// writeRoute applies rules and app's header-route annotation (none when "") to the route
// live, unless it holds them already.
func (p *Platform) writeRoute(ctx context.Context, w *wrote, live *gwv1.HTTPRoute, app string, rules []gwv1.HTTPRouteRule, ann string) error {
	key := routesAnnotation(app)
	if equality.Semantic.DeepEqual(live.Spec.Rules, rules) && live.Annotations[key] == ann {
		return nil
	}
	// The resource version makes the apply conditional: another app's write to the same
	// route since it was read fails this one (ECONFLICT), which is retried on what the
	// route holds then, instead of overwriting that app's parts.
	meta := map[string]any{"name": live.Name, "namespace": live.Namespace, "resourceVersion": live.ResourceVersion}
	if ann != "" {
		meta["annotations"] = map[string]string{key: ann}
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": gwv1.GroupVersion.String(),
		"kind":       "HTTPRoute",
		"metadata":   meta,
		"spec":       map[string]any{"rules": rules},
	})
	if err != nil {
		return fmt.Errorf("HTTPRoute %s/%s: %w", live.Namespace, live.Name, err)
	}
	force := true
	res, err := p.gw.GatewayV1().HTTPRoutes(live.Namespace).Patch(ctx, live.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: p.manager, Force: &force})
	if err == nil {
		w.add(kindRoute, res, false)
	}
	return apiError(err, "apply", "HTTPRoute", live.Namespace, live.Name)
}

// observeRoute reads app's split from HTTPRoute ref: the weights of its stable and canary
// backends in the first rule that sends to the app, as revisions (stableRev and canaryRev,
// what those Services select), and the header routes whose rules are there.
func (p *Platform) observeRoute(ctx context.Context, app string, ref slipway.RouteRef, stableRev, canaryRev, previewRev string) (slipway.Split, error) {
	ns := ref.Namespace
	if ns == "" {
		ns = p.ns
	}
	var s slipway.Split
	lister, err := p.routeLister(ctx, ns)
	if err != nil {
		return s, err
	}
	live, err := lister.Get(ref.Name)
	if apierrors.IsNotFound(err) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read HTTPRoute %s/%s: %w", ns, ref.Name, err)
	}
	stable, canary := serviceName(app, roleStable), serviceName(app, roleCanary)
	weights := map[string]int{}
	found := false
	present := map[string]string{} // header route -> Service of its first rule
	for _, r := range live.Spec.Rules {
		if route, n, ok := ownRule(app, r); ok {
			if n == 0 && len(r.BackendRefs) == 1 {
				present[route] = string(r.BackendRefs[0].Name)
			}
			continue
		}
		if found {
			continue
		}
		for _, b := range r.BackendRefs {
			w := 1
			if b.Weight != nil {
				w = int(*b.Weight)
			}
			switch {
			case refersTo(b.BackendObjectReference, stable, p.ns, ns) && stableRev != "":
				weights[stableRev] += w
				found = true
			case refersTo(b.BackendObjectReference, canary, p.ns, ns) && canaryRev != "":
				weights[canaryRev] += w
			}
		}
	}
	if found {
		for _, rev := range []string{canaryRev, stableRev} {
			if w := weights[rev]; w > 0 {
				s.Weights = append(s.Weights, slipway.Weight{Revision: rev, Weight: w})
				delete(weights, rev)
			}
		}
	}
	var asked []slipway.Route
	if a := live.Annotations[routesAnnotation(app)]; a != "" {
		_ = json.Unmarshal([]byte(a), &asked) // unreadable: no header route is confirmed
	}
	bySvc := map[string]string{stable: stableRev, canary: canaryRev, serviceName(app, rolePreview): previewRev}
	for _, rt := range asked {
		if svc, ok := present[rt.Name]; ok && bySvc[svc] != "" {
			rt.Revision = bySvc[svc]
			s.Routes = append(s.Routes, rt)
		}
	}
	return s, nil
}
