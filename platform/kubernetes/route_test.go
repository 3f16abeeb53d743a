package kubernetes

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"slipway.dev/slipway"
)

// userRules are an HTTPRoute's rules as a user writes them: a rule for /api that sends to
// the app's stable Service beside a legacy backend, with a filter and a timeout, and a rule
// of another service.
func userRules(t *testing.T) []gwv1.HTTPRouteRule {
	t.Helper()
	var rules []gwv1.HTTPRouteRule
	err := json.Unmarshal([]byte(`[
	  {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "headers": [{"name": "X-Beta", "value": "0"}]}],
	   "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "X-From", "value": "gw"}]}}],
	   "timeouts": {"request": "10s"},
	   "backendRefs": [{"name": "web-stable", "port": 8080, "weight": 1}, {"name": "legacy", "port": 80, "weight": 5}]},
	  {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "other", "port": 80}]}
	]`), &rules)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func weightOf(r gwv1.HTTPRouteRule, name string) int {
	for _, b := range r.BackendRefs {
		if string(b.Name) == name {
			if b.Weight == nil {
				return 1
			}
			return int(*b.Weight)
		}
	}
	return -1
}

func TestEditRules_SetsOnlyItsOwnParts(t *testing.T) {
	live := userRules(t)
	beta := headerRule{name: "beta", service: "web-canary", headers: headerMatches([]slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}})}
	got, err := editRules(live, "web", "shop", "shop", 80, 20, []headerRule{beta}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d rules, want 3 (header copy, the app's rule, the other)", len(got))
	}
	hr, app, other := got[0], got[1], got[2]
	if hr.Name == nil || *hr.Name != "slipway.web.beta.0" {
		t.Errorf("header rule named %v, want slipway.web.beta.0", hr.Name)
	}
	if len(hr.BackendRefs) != 1 || hr.BackendRefs[0].Name != "web-canary" || *hr.BackendRefs[0].Port != 8080 {
		t.Errorf("header rule backends %+v, want only web-canary on port 8080", hr.BackendRefs)
	}
	if h := hr.Matches[0].Headers; len(h) != 1 || h[0].Name != "X-Beta" || h[0].Value != "1" || *hr.Matches[0].Path.Value != "/api" {
		t.Errorf("header rule match %+v, want /api with X-Beta: 1 (replacing the rule's X-Beta)", hr.Matches[0])
	}
	if len(hr.Filters) != 1 || hr.Timeouts == nil {
		t.Errorf("header rule lost the rule's filters or timeouts: %+v", hr)
	}
	if weightOf(app, "web-stable") != 80 || weightOf(app, "web-canary") != 20 || weightOf(app, "legacy") != 5 {
		t.Errorf("weights stable %d canary %d legacy %d, want 80, 20 and 5 as found", weightOf(app, "web-stable"), weightOf(app, "web-canary"), weightOf(app, "legacy"))
	}
	if app.BackendRefs[1].Name != "web-canary" || *app.BackendRefs[1].Port != 8080 {
		t.Errorf("canary backend %+v, want it beside stable with its port", app.BackendRefs[1])
	}
	if !equality.Semantic.DeepEqual(other, live[1]) || !equality.Semantic.DeepEqual(app.Filters, live[0].Filters) || !equality.Semantic.DeepEqual(app.Matches, live[0].Matches) {
		t.Error("the user's other rule, filters or matches changed")
	}

	again, err := editRules(got, "web", "shop", "shop", 80, 20, []headerRule{beta}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(again, got) {
		t.Errorf("editing the edited rules again changed them:\n%+v\n%+v", got, again)
	}
	released, err := editRules(got, "web", "shop", "shop", 0, 0, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 2 || weightOf(released[0], "web-canary") != -1 || weightOf(released[0], "legacy") != 5 || !equality.Semantic.DeepEqual(released[1], live[1]) {
		t.Errorf("released rules %+v, want the user's two rules without the canary", released)
	}
}

func TestEditRules_Refuses(t *testing.T) {
	live := userRules(t)
	if _, err := editRules(live, "api", "shop", "shop", 100, 0, nil, false); err == nil || slipway.ErrorCode(err) != slipway.EINVALID || !strings.Contains(err.Error(), "api-stable") {
		t.Errorf("a route without a rule for the app: %v, want EINVALID naming api-stable", err)
	}
	if _, err := editRules(live, "web", "other-ns", "shop", 100, 0, nil, false); err == nil {
		t.Error("a backend in the route's namespace was taken for the app's Service in another")
	}
	var many []headerRule
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"} {
		many = append(many, headerRule{name: n, service: "web-canary"})
	}
	if _, err := editRules(live, "web", "shop", "shop", 100, 0, many, false); err == nil || !strings.Contains(err.Error(), "more than the 16") {
		t.Errorf("17 rules: %v, want a refusal", err)
	}
}

func TestHeaderMatches(t *testing.T) {
	got := headerMatches([]slipway.HeaderMatch{
		{Header: "X-A", Exact: "1"}, {Header: "X-B", Prefix: "v1."}, {Header: "X-C", Regex: "^a+$"},
		{Cookie: "beta", Exact: "yes"}, {Cookie: "grp", Prefix: "a"},
	})
	want := []string{"Exact X-A 1", `RegularExpression X-B ^v1\.`, "RegularExpression X-C ^a+$",
		`RegularExpression Cookie (^|;\s*)beta=yes(;|$)`, `RegularExpression Cookie (^|;\s*)grp=a[^;]*`}
	for i, m := range got {
		if s := string(*m.Type) + " " + string(m.Name) + " " + m.Value; s != want[i] {
			t.Errorf("match %d = %s, want %s", i, s, want[i])
		}
	}
}
