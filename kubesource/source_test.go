package kubesource_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/kubesource"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest/kubetest"
	"slipway.dev/slipway/sqlite"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the CRDs of deploy/kubernetes/crds.yaml (what `slipway schema --crd`
// prints) and waits for the API server to establish them: it refuses a schema that is not
// structural.
func installCRDs(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "deploy", "kubernetes", "crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var names []string
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: doc}
		names = append(names, u.GetName())
		if _, err := dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("the API server refuses CRD %s: %v", u.GetName(), err)
		}
	}
	for _, name := range names {
		waitFor(t, "CRD "+name+" to be established", func() bool {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// world is one environment (the default) on the sim platform, with a real store, and a
// Source watching one namespace of a real cluster.
type world struct {
	t     *testing.T
	dyn   dynamic.Interface
	ns    string
	store *sqlite.Store
	eng   *engine.Engine
	src   *kubesource.Source
}

func newWorld(t *testing.T) *world {
	k := kubetest.Shared(t)
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	installCRDs(t, dyn)
	ns := k.Namespace(t)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{ReadyDelay: 2 * time.Millisecond}),
		Analysis: analysis.NewRunner(analysis.Config{Store: st}), Poll: 5 * time.Millisecond, Resync: time.Hour,
		Target: slipway.TargetSim})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- eng.Run(ctx) }()
	src, err := kubesource.New(kubesource.Config{Client: dyn, Namespaces: []string{ns}, Store: st, StatusEvery: 100 * time.Millisecond,
		Place: func(env string) (kubesource.Place, bool) {
			if env != slipway.DefaultEnvironment {
				return kubesource.Place{}, false
			}
			return kubesource.Place{Deployer: eng, State: st, Status: eng}, true
		}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		}
		st.Close()
	})
	return &world{t: t, dyn: dyn, ns: ns, store: st, eng: eng, src: src}
}

func (w *world) resource(plural string) dynamic.ResourceInterface {
	return w.dyn.Resource(schema.GroupVersionResource{Group: "slipway.dev", Version: "v1alpha1", Resource: plural}).Namespace(w.ns)
}

// put creates or updates a resource from YAML, with strict field validation (as kubectl
// apply does).
func (w *world) put(plural, doc string) {
	w.t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		w.t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	ctx := context.Background()
	cur, err := w.resource(plural).Get(ctx, u.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = w.resource(plural).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
	case err == nil:
		u.SetResourceVersion(cur.GetResourceVersion())
		_, err = w.resource(plural).Update(ctx, u, metav1.UpdateOptions{FieldValidation: "Strict"})
	}
	if err != nil {
		w.t.Fatalf("put %s %s: %v", plural, u.GetName(), err)
	}
}

func (w *world) status(name string) map[string]any {
	u, err := w.resource("apps").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	st, _, _ := unstructured.NestedMap(u.Object, "status")
	return st
}

func condition(st map[string]any, typ string) map[string]any {
	list, _ := st["conditions"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

const template = `apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: ok}
spec:
  metrics:
    - name: check
      provider: {job: {command: "true"}}
`

func app(version string, steps string) string {
	return `apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web}
spec:
  replicas: 3
  version: ` + version + `
  run: {command: sim}
  strategy:
    canary:
      steps:
` + steps
}

func TestSource_AppliesResourcesAndWritesStatus(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.put("analysistemplates", template)
	w.put("apps", app("v1", "        - setWeight: 50\n        - analysis: {templates: [ok]}\n"))

	waitFor(t, "web v1 to be Ready", func() bool {
		c := condition(w.status("web"), kubesource.ConditionReady)
		return c != nil && c["status"] == "True"
	})
	st := w.status("web")
	if st["stableVersion"] != "v1" || st["phase"] != "Completed" || st["observedGeneration"] != int64(1) {
		t.Fatalf("status %v; want v1 stable, Completed, generation 1 observed", st)
	}
	a, err := w.store.App(ctx, "web")
	if err != nil || a.Spec.Replicas != 3 || a.Spec.Version != "v1" {
		t.Fatalf("stored app %+v, %v", a.Spec, err)
	}
	evs, err := w.store.Events(ctx, slipway.EventFilter{App: "web"})
	if err != nil || len(evs) == 0 || evs[0].Actor != kubesource.ActorKubernetes {
		t.Fatalf("events %+v, %v; want changes by %s", evs, err, kubesource.ActorKubernetes)
	}

	// A new version: a canary rollout, its progress visible in the status, then Ready again.
	w.put("apps", app("v2", "        - setWeight: 50\n        - pause: {duration: 1s}\n"))
	waitFor(t, "the v2 rollout to show", func() bool {
		st := w.status("web")
		c := condition(st, kubesource.ConditionProgressing)
		return c != nil && c["status"] == "True" && st["canaryVersion"] == "v2" && st["stepText"] != nil
	})
	waitFor(t, "web v2 to be Ready", func() bool {
		st := w.status("web")
		c := condition(st, kubesource.ConditionReady)
		return c != nil && c["status"] == "True" && st["stableVersion"] == "v2" && st["observedGeneration"] == int64(2)
	})

	// A resource the API server accepts but slipway refuses: a condition names the field;
	// the app keeps v2.
	w.put("apps", app("v3", "        - analysis: {templates: [missing]}\n"))
	waitFor(t, "the refusal in the status", func() bool {
		c := condition(w.status("web"), kubesource.ConditionValid)
		return c != nil && c["status"] == "False" && strings.Contains(c["message"].(string), `AnalysisTemplate "missing" is not defined`) &&
			strings.Contains(c["message"].(string), "spec.strategy.canary.steps[0].analysis.templates[0]")
	})
	if a, _ := w.store.App(ctx, "web"); a.Spec.Version != "v2" {
		t.Fatalf("an invalid resource changed the app to %s", a.Spec.Version)
	}
	if c := condition(w.status("web"), kubesource.ConditionReady); c["status"] != "False" {
		t.Fatalf("Ready %v while the resource's generation is refused", c)
	}

	// Deleting the resource deletes its app.
	if err := w.resource("apps").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the app to be deleted", func() bool {
		_, err := w.store.App(ctx, "web")
		return slipway.ErrorCode(err) == slipway.ENOTFOUND
	})
}

func TestSource_TheAPIServerRefusesUnknownFields(t *testing.T) {
	w := newWorld(t)
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(app("v1", "        - setWeight: 50\n")+"  replica: 4\n"), &obj); err != nil {
		t.Fatal(err)
	}
	_, err := w.resource("apps").Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{FieldValidation: "Strict"})
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("create with an unknown field: %v, want a refusal naming it", err)
	}
}

func TestSource_AnAppCreatedOtherwiseIsNotDeleted(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// An app applied from a file, beside one from a resource.
	if _, err := w.eng.Apply(ctx, slipway.Set{Apps: []slipway.App{{Name: "cli", Replicas: 1, Run: slipway.RunSpec{Command: "sim"},
		Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}}}, slipway.ApplyOptions{Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	w.put("apps", app("v1", "        - setWeight: 50\n"))
	waitFor(t, "web to be applied", func() bool { _, err := w.store.App(ctx, "web"); return err == nil })
	if err := w.resource("apps").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web to be deleted", func() bool {
		_, err := w.store.App(ctx, "web")
		return slipway.ErrorCode(err) == slipway.ENOTFOUND
	})
	if _, err := w.store.App(ctx, "cli"); err != nil {
		t.Fatalf("the app applied from a file was deleted with the resource's: %v", err)
	}
}
