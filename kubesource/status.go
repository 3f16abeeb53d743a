package kubesource

import (
	"context"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"slipway.dev/slipway"
)

// Condition types of an App resource's status.
const (
	// ConditionValid is False while the resource's spec is refused (its message says which
	// field and what would be valid); the app keeps what was applied before.
	ConditionValid = "Valid"
	// ConditionProgressing is True while a rollout is under way (or paused).
	ConditionProgressing = "Progressing"
	// ConditionReady is True once the resource's generation was applied and its rollout
	// completed: `kubectl wait --for=condition=Ready apps.slipway.dev/NAME`.
	ConditionReady = "Ready"
)

// writeStatuses writes the status of every App resource of namespace ns whose status moved.
func (s *Source) writeStatuses(ctx context.Context, ns string) {
	objs, err := s.listers[ns]["App"].List(labels.Everything())
	if err != nil {
		return
	}
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok || u.GetDeletionTimestamp() != nil {
			continue
		}
		if err := s.writeStatus(ctx, u); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			s.log.Warn("app status not written", "namespace", ns, "app", u.GetName(), "err", err)
		}
	}
}

func (s *Source) writeStatus(ctx context.Context, u *unstructured.Unstructured) error {
	env := s.environment(u)
	key := u.GetNamespace() + "/App/" + u.GetName()
	s.mu.Lock()
	problem := s.invalid[key]
	s.mu.Unlock()
	var st *slipway.AppStatus
	var appliedGen int64
	if p, ok := s.cfg.Place(env); ok {
		if got, err := p.Status.Status(ctx, u.GetName()); err == nil {
			st = &got
		}
		if a, err := p.State.App(ctx, u.GetName()); err == nil && problem == "" && st != nil && specMatches(a.Spec, u) {
			appliedGen = u.GetGeneration()
		}
	}
	old, _, _ := unstructured.NestedMap(u.Object, "status")
	if appliedGen == 0 {
		appliedGen, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	}
	want := statusOf(st, problem, u.GetGeneration(), appliedGen, old, time.Now())
	if reflect.DeepEqual(normalize(old), normalize(want)) {
		return nil
	}
	c := u.DeepCopy()
	c.Object["status"] = want
	_, err := s.cfg.Client.Resource(AppsGVR).Namespace(u.GetNamespace()).UpdateStatus(ctx, c, metav1.UpdateOptions{FieldManager: "slipway"})
	return err
}

// specMatches reports whether the stored app is what the resource declares now: its version
// and replicas (what a change to a resource most often moves), so that observedGeneration is
// only claimed once the engine holds the resource's current spec.
func specMatches(a slipway.App, u *unstructured.Unstructured) bool {
	version, _, _ := unstructured.NestedString(u.Object, "spec", "version")
	replicas, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	return a.Version == version && (!found || int64(a.Replicas) == replicas)
}

// statusOf is the status an App resource should show: its rollout from the engine (st; nil
// when the app does not exist), the problem of an invalid spec, and conditions whose
// transition times move only when their status does.
func statusOf(st *slipway.AppStatus, problem string, generation, applied int64, old map[string]any, now time.Time) map[string]any {
	out := map[string]any{}
	if applied > 0 {
		out["observedGeneration"] = applied
	}
	phase, reason := "Pending", ""
	progressing := false
	ready := false
	if st != nil {
		if st.Stable != nil {
			out["stableRevision"] = st.Stable.Revision
			out["stableVersion"] = st.Stable.Version
			phase = "Stable"
		}
		if r := st.Rollout; r != nil {
			phase, reason = string(r.Phase), r.Reason
			out["rollout"] = r.ID
			out["step"] = int64(r.Step)
			out["steps"] = int64(r.Steps)
			if r.Steps > 0 {
				out["stepText"] = fmt.Sprintf("%d/%d", min(r.Step+1, r.Steps), r.Steps)
			}
			out["weight"] = int64(r.Weight)
			if r.Phase == slipway.PhaseProgressing || r.Phase == slipway.PhasePaused {
				progressing = true
				out["canaryRevision"] = r.Revision
				out["canaryVersion"] = r.Version
			}
		}
		ready = !progressing && st.Stable != nil && (st.Rollout == nil || st.Rollout.Phase == slipway.PhaseCompleted)
	}
	if problem != "" {
		reason = problem
	}
	out["phase"] = phase
	if reason != "" {
		out["reason"] = reason
	}
	upToDate := applied == generation && problem == ""
	conds := []map[string]any{
		condition(ConditionValid, problem == "", "Applied", "Invalid", problem),
		condition(ConditionProgressing, progressing, "RolloutInProgress", phase, reason),
		condition(ConditionReady, ready && upToDate, "RolloutComplete", notReadyReason(upToDate, phase), reason),
	}
	prev := map[string]map[string]any{}
	if list, ok := old["conditions"].([]any); ok {
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				if t, ok := m["type"].(string); ok {
					prev[t] = m
				}
			}
		}
	}
	var list []any
	for _, c := range conds {
		c["observedGeneration"] = generation
		c["lastTransitionTime"] = now.UTC().Format(time.RFC3339)
		if p, ok := prev[c["type"].(string)]; ok && p["status"] == c["status"] {
			if t, ok := p["lastTransitionTime"].(string); ok {
				c["lastTransitionTime"] = t
			}
		}
		list = append(list, c)
	}
	out["conditions"] = list
	return out
}

func notReadyReason(upToDate bool, phase string) string {
	if !upToDate {
		return "NotApplied"
	}
	return phase
}

func condition(typ string, ok bool, yes, no, msg string) map[string]any {
	c := map[string]any{"type": typ, "status": "False", "reason": no}
	if ok {
		c["status"], c["reason"] = "True", yes
	}
	if c["reason"] == "" {
		c["reason"] = "Unknown"
	}
	if msg != "" {
		if len(msg) > 4000 {
			msg = msg[:4000] + "…"
		}
		c["message"] = msg
	}
	return c
}

// normalize turns a status into the shape it has once read back from the API server
// (numbers as int64, lists as []any), without transition times, so that an unchanged status
// compares equal and is not written again.
func normalize(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case int:
			out[k] = int64(x)
		case float64:
			out[k] = int64(x)
		case []any:
			var list []any
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					em = normalize(em)
					delete(em, "lastTransitionTime")
					list = append(list, em)
				} else {
					list = append(list, e)
				}
			}
			out[k] = list
		case map[string]any:
			out[k] = normalize(x)
		default:
			out[k] = v
		}
	}
	return out
}
