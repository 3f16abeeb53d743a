package spec

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

func ptr[T any](v T) *T { return &v }

const envelope = "apiVersion: slipway.dev/v1alpha1\n"

func TestParse_Good(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want slipway.Set
	}{
		{
			name: "rolling with defaults",
			yaml: envelope + `kind: App
metadata: {name: web}
spec:
  run: {command: ./bin/web, args: ["--port", "${PORT}"], env: {A: b}, dir: /srv}
  strategy:
    rolling: {maxSurge: "25%", maxUnavailable: 0, minReady: 5s, progressDeadline: 5m}
`,
			want: slipway.Set{Apps: []slipway.App{{
				Name: "web", Replicas: 1,
				Run: slipway.RunSpec{Command: "./bin/web", Args: []string{"--port", "${PORT}"}, Env: map[string]string{"A": "b"}, Dir: "/srv"},
				Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{
					MaxSurge: slipway.Percent(25), MaxUnavailable: slipway.Count(0),
					MinReady: slipway.Duration(5 * time.Second), ProgressDeadline: slipway.Duration(5 * time.Minute),
				}},
			}}},
		},
		{
			name: "replicas 0 is kept",
			yaml: envelope + "kind: App\nmetadata: {name: web}\nspec: {replicas: 0, run: {command: x}, strategy: {rolling: {}}}\n",
			want: slipway.Set{Apps: []slipway.App{{Name: "web", Replicas: 0, Run: slipway.RunSpec{Command: "x"},
				Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}}},
		},
		{
			name: "blue-green with probes, traffic and analysis",
			yaml: envelope + `kind: App
metadata: {name: api}
spec:
  replicas: 3
  version: v2
  run: {command: ./api}
  health:
    readiness: {http: {path: /healthz}, period: 1s, timeout: 1s, successThreshold: 1, failureThreshold: 3, initialDelay: 0s}
    liveness: {tcp: {}}
  traffic: {listen: "127.0.0.1:8080", preview: "127.0.0.1:8081", stickiness: {enabled: true, header: X-User}}
  strategy:
    blueGreen:
      autoPromote: false
      prePromotionAnalysis: {templates: [smoke], args: [{name: url, value: "http://127.0.0.1:8081"}]}
      scaleDownDelay: 30s
      previewReplicas: 1
  revisionHistoryLimit: 4
---
kind: AnalysisTemplate
apiVersion: slipway.dev/v1alpha1
metadata: {name: smoke}
spec:
  args: [{name: url}]
  metrics:
    - name: smoke
      provider: {job: {command: ./smoke.sh, args: ["{{args.url}}"], timeout: 30s}}
`,
			want: slipway.Set{
				Apps: []slipway.App{{
					Name: "api", Replicas: 3, Version: "v2", Run: slipway.RunSpec{Command: "./api"},
					Health: slipway.Health{
						Readiness: &slipway.Probe{HTTP: &slipway.HTTPProbe{Path: "/healthz"}, Period: slipway.Duration(time.Second),
							Timeout: slipway.Duration(time.Second), SuccessThreshold: 1, FailureThreshold: 3},
						Liveness: &slipway.Probe{TCP: &slipway.TCPProbe{}},
					},
					Traffic: slipway.Traffic{Listen: "127.0.0.1:8080", Preview: "127.0.0.1:8081",
						Stickiness: &slipway.Stickiness{Enabled: true, Header: "X-User"}},
					Strategy: slipway.Strategy{BlueGreen: &slipway.BlueGreenStrategy{
						AutoPromote: ptr(false),
						PrePromotionAnalysis: &slipway.AnalysisRef{Templates: []string{"smoke"},
							Args: []slipway.Arg{{Name: "url", Value: "http://127.0.0.1:8081"}}},
						ScaleDownDelay: slipway.Duration(30 * time.Second), PreviewReplicas: ptr(1),
					}},
					RevisionHistoryLimit: 4,
				}},
				Templates: []slipway.AnalysisTemplate{{
					Name: "smoke", Args: []slipway.TemplateArg{{Name: "url"}},
					Metrics: []slipway.Metric{{Name: "smoke", Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{
						Command: "./smoke.sh", Args: []string{"{{args.url}}"}, Timeout: slipway.Duration(30 * time.Second)}}}},
				}},
			},
		},
		{
			name: "canary with every step and background analysis",
			yaml: envelope + `kind: App
metadata: {name: web}
spec:
  run: {command: ./web}
  strategy:
    canary:
      progressDeadline: 5m
      steps:
        - setWeight: 20
        - pause: {duration: 30s}
        - pause: {}
        - pause:
        - analysis: {templates: [error-rate], args: [{name: threshold, value: "0.05"}]}
        - setCanaryScale: {replicas: 2}
        - setCanaryScale: {weight: 50}
        - setCanaryScale: {matchTrafficWeight: true}
        - setHeaderRoute: {name: beta, match: [{header: X-Beta, exact: "1"}, {cookie: b, regex: "^y"}]}
  analysis: {templates: [error-rate], args: [{name: threshold, value: "0.1"}], startingStep: 1}
---
apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  args: [{name: threshold}, {name: url, value: "http://127.0.0.1:9090/x"}]
  metrics:
    - name: errors
      interval: 10s
      count: 5
      initialDelay: 0s
      successCondition: "result < {{args.threshold}}"
      failureCondition: "result >= 0.5"
      failureLimit: 1
      inconclusiveLimit: 1
      consecutiveErrorLimit: 4
      noData: inconclusive
      dryRun: false
      provider:
        web: {url: "{{args.url}}", method: GET, headers: {A: b}, body: "", jsonPath: "$.data.value", timeout: 5s}
`,
			want: slipway.Set{
				Apps: []slipway.App{{
					Name: "web", Replicas: 1, Run: slipway.RunSpec{Command: "./web"},
					Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{
						ProgressDeadline: slipway.Duration(5 * time.Minute),
						Steps: []slipway.Step{
							{SetWeight: ptr(20)},
							{Pause: &slipway.PauseStep{Duration: slipway.Duration(30 * time.Second)}},
							{Pause: &slipway.PauseStep{}},
							{Pause: &slipway.PauseStep{}},
							{Analysis: &slipway.AnalysisRef{Templates: []string{"error-rate"}, Args: []slipway.Arg{{Name: "threshold", Value: "0.05"}}}},
							{SetCanaryScale: &slipway.CanaryScale{Replicas: ptr(2)}},
							{SetCanaryScale: &slipway.CanaryScale{Weight: ptr(50)}},
							{SetCanaryScale: &slipway.CanaryScale{MatchTrafficWeight: true}},
							{SetHeaderRoute: &slipway.HeaderRoute{Name: "beta", Match: []slipway.HeaderMatch{
								{Header: "X-Beta", Exact: "1"}, {Cookie: "b", Regex: "^y"}}}},
						},
					}},
					Analysis: &slipway.BackgroundAnalysis{
						AnalysisRef:  slipway.AnalysisRef{Templates: []string{"error-rate"}, Args: []slipway.Arg{{Name: "threshold", Value: "0.1"}}},
						StartingStep: 1,
					},
				}},
				Templates: []slipway.AnalysisTemplate{{
					Name: "error-rate",
					Args: []slipway.TemplateArg{{Name: "threshold"}, {Name: "url", Value: ptr("http://127.0.0.1:9090/x")}},
					Metrics: []slipway.Metric{{
						Name: "errors", Interval: slipway.Duration(10 * time.Second), Count: 5,
						SuccessCondition: "result < {{args.threshold}}", FailureCondition: "result >= 0.5",
						FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: ptr(4), NoData: slipway.NoDataInconclusive,
						Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "{{args.url}}", Method: "GET",
							Headers: map[string]string{"A": "b"}, JSONPath: "$.data.value", Timeout: slipway.Duration(5 * time.Second)}},
					}},
				}},
			},
		},
		{
			name: "empty documents and comments are skipped; anchors are followed",
			yaml: "# nothing\n---\n---\n" + envelope + `kind: App
metadata: {name: a}
spec:
  run: &run {command: ./x, args: [a]}
  strategy: {rolling: {}}
---
` + envelope + `kind: App
metadata: {name: b}
spec:
  replicas: ~
  run: *run
  strategy: {rolling: {}}
`,
			want: slipway.Set{Apps: []slipway.App{
				{Name: "a", Replicas: 1, Run: slipway.RunSpec{Command: "./x", Args: []string{"a"}}, Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}},
				{Name: "b", Replicas: 1, Run: slipway.RunSpec{Command: "./x", Args: []string{"a"}}, Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("test.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("Parse mismatch\ngot:  %s\nwant: %s", g, w)
			}
			if err := validate.Set(got, nil); err != nil {
				t.Errorf("validate.Set of the parsed set: %v", err)
			}
		})
	}
}

// writeFiles creates files (relative path -> content) under a temporary directory.
func writeFiles(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func appDoc(name, extra string) string {
	return envelope + "kind: App\nmetadata: {name: " + name + "}\nspec:\n  run: {command: ./x}\n" + extra
}

func TestLoad_Directory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b/web.yml":      appDoc("web", "  strategy:\n    canary:\n      steps: [{analysis: {templates: [up]}}]\n"),
		"a/api.yaml":     appDoc("api", "  strategy: {rolling: {}}\n"),
		"c/t/up.yaml":    envelope + "kind: AnalysisTemplate\nmetadata: {name: up}\nspec:\n  metrics: [{name: up, provider: {job: {command: ./up}}}]\n",
		"notes.txt":      "not yaml",
		"c/broken.json":  "{",
		"z/other.yaml":   appDoc("zed", "  strategy: {blueGreen: {}}\n"),
		"z/other2.yaml~": "ignored backup",
	})
	set, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var names []string
	for _, a := range set.Apps {
		names = append(names, a.Name)
	}
	if got, want := strings.Join(names, ","), "api,web,zed"; got != want {
		t.Errorf("apps in order %q, want %q (files sorted by path)", got, want)
	}
	if len(set.Templates) != 1 || set.Templates[0].Name != "up" {
		t.Errorf("templates = %+v, want one named up", set.Templates)
	}

	// A file and a directory together form one set.
	set, err = Load(filepath.Join(dir, "b", "web.yml"), filepath.Join(dir, "c"))
	if err != nil {
		t.Fatalf("Load file and dir: %v", err)
	}
	if len(set.Apps) != 1 || len(set.Templates) != 1 {
		t.Errorf("got %d apps, %d templates; want 1 and 1", len(set.Apps), len(set.Templates))
	}
}

func TestLoad_ErrorsAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": appDoc("web", "  strategy: {rolling: {}}\n"),
		"b.yaml": appDoc("web", "  replicas: -1\n  strategy:\n    canary:\n      steps: [{setWeight: 150}]\n"),
	})
	_, err := Load(dir)
	if err == nil {
		t.Fatal("Load accepted a duplicate name")
	}
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	want := "3 errors in " + dir + "\n" +
		b + ":3:18: metadata.name: App \"web\" is already defined at " + a + ":3:18; give each App its own name\n" +
		b + ":6:13: spec.replicas: -1 is negative; use 0 or more\n" +
		b + ":9:27: spec.strategy.canary.steps[0].setWeight: 150 is out of range; use 0 to 100\n"
	if got := errorText(t, err); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoad_IOErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name    string
		paths   []string
		notExit bool
	}{
		{name: "no paths"},
		{name: "missing file", paths: []string{filepath.Join(empty, "nope.yaml")}, notExit: true},
		{name: "directory without yaml", paths: []string{empty}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.paths...)
			if code := slipway.ErrorCode(err); code != slipway.EINVALID {
				t.Fatalf("Load error %v has code %q, want %q", err, code, slipway.EINVALID)
			}
			if tt.notExit && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load error %v does not wrap fs.ErrNotExist", err)
			}
		})
	}
}

func TestParse_NoDocuments(t *testing.T) {
	_, err := Parse("empty.yaml", []byte("# only a comment\n---\n"))
	if got, want := errorText(t, err), "1 error in empty.yaml\nempty.yaml: no documents; write at least one Environment, Pipeline, Notification, App, AnalysisTemplate or FlagSet\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLoadWith_TemplateKnown(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"web.yaml": appDoc("web", "  strategy:\n    canary:\n      steps: [{analysis: {templates: [stored]}}]\n"),
	})
	if _, err := Load(dir); err == nil {
		t.Error("Load accepted a template that exists nowhere")
	}
	if _, err := LoadWith(func(name string) bool { return name == "stored" }, dir); err != nil {
		t.Errorf("LoadWith a known template: %v", err)
	}
}

func TestParse_AliasExpansionIsBounded(t *testing.T) {
	// 400 metrics of 400 headers each, from a few kilobytes of aliases.
	var h, m strings.Builder
	h.WriteString("  h: &h {k0: &v v")
	for i := 1; i < 400; i++ {
		h.WriteString(", k" + strconv.Itoa(i) + ": *v")
	}
	h.WriteString("}\n")
	m.WriteString("spec:\n  metrics: [*m")
	for i := 1; i < 400; i++ {
		m.WriteString(", *m")
	}
	m.WriteString("]\n")
	doc := envelope + "kind: AnalysisTemplate\nmetadata: {name: t}\nx:\n" + h.String() +
		"  m: &m {name: m, successCondition: result, provider: {web: {url: http://x/, headers: *h}}}\n" + m.String()
	_, err := Parse("bomb.yaml", []byte(doc))
	got := errorText(t, err)
	if !strings.Contains(got, "expands aliases too often") || strings.Count(got, "\n") > 4 {
		t.Errorf("got:\n%s\nwant one line about alias expansion besides the unknown field", got)
	}
}

// TestLoad_MinimumSample reads a builtin metric's minimum sample and its bound.
func TestLoad_MinimumSample(t *testing.T) {
	set, err := Load("testdata/valid/canary-builtin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m slipway.Metric
	for _, tpl := range set.Templates {
		for _, x := range tpl.Metrics {
			if x.Name == "canary-errors" {
				m = x
			}
		}
	}
	if m.Provider.Builtin == nil || m.Provider.Builtin.MinRequests != 40 || m.SampleTimeout.D().Minutes() != 2 {
		t.Fatalf("metric canary-errors = %+v", m)
	}
}

func TestParse_EnvironmentsAndTheirApps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envs.yaml")
	doc := `apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata:
  name: production
  labels: {tier: production}
spec:
  target:
    kind: kubernetes
    kubernetes: {context: prod, namespace: shop}
---
apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: staging}
spec:
  target: {kind: local}
---
apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web, environment: production}
spec:
  container: {image: registry.example/web:1.4, port: 8080}
  strategy: {rolling: {}}
---
apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web, environment: staging}
spec:
  run: {command: ./web}
  strategy: {rolling: {}}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Environments) != 2 || s.Environments[0].Target.Kubernetes == nil || s.Environments[0].Target.Kubernetes.Namespace != "shop" ||
		s.Environments[0].Labels["tier"] != "production" || s.Environments[1].Target.Kind != slipway.TargetLocal {
		t.Errorf("environments %+v", s.Environments)
	}
	if len(s.Apps) != 2 || s.Apps[0].Environment != "production" || s.Apps[0].Container == nil || s.Apps[0].Container.Port != 8080 ||
		s.Apps[1].EnvironmentName() != "staging" {
		t.Errorf("apps %+v", s.Apps)
	}
	// A revision of an app that runs a process keeps the ID it had before containers.
	if got := s.Apps[1].RevisionSpec().Hash(); got != (slipway.RevisionSpec{Run: s.Apps[1].Run}).Hash() {
		t.Errorf("hash of a process app changed with the container field: %s", got)
	}
}

// TestParseFiles_OneSetAcrossFiles: files read from elsewhere than the disk are one set, as
// a directory's are: a document may use a template of another file, and every problem of
// every file is named by its file:line.
func TestParseFiles_OneSetAcrossFiles(t *testing.T) {
	app := envelope + "kind: App\nmetadata: {name: web}\nspec:\n  replicas: 1\n  run: {command: ./web}\n  strategy:\n    canary:\n      steps: [{analysis: {templates: [smoke]}}]\n"
	tmpl := envelope + "kind: AnalysisTemplate\nmetadata: {name: smoke}\nspec:\n  metrics:\n    - name: errors\n      interval: 10s\n      count: 1\n      successCondition: result < 1\n      provider: {builtin: {metric: error_rate}}\n"
	set, err := ParseFiles(nil, "deploy/", File{Name: "deploy/a.yaml", Data: []byte(app)}, File{Name: "deploy/b.yaml", Data: []byte(tmpl)})
	if err != nil {
		t.Fatalf("ParseFiles: %v", err)
	}
	if len(set.Apps) != 1 || len(set.Templates) != 1 {
		t.Errorf("set: %+v", set)
	}
	_, err = ParseFiles(nil, "deploy/ at commit 1a2b", File{Name: "deploy/a.yaml", Data: []byte(strings.Replace(app, "replicas", "replica", 1))},
		File{Name: "deploy/b.yaml", Data: []byte("kind: [\n")})
	var e *slipway.Error
	// b.yaml's syntax error also leaves the template a.yaml uses undefined.
	if !errors.As(err, &e) || e.Message != "3 errors in deploy/ at commit 1a2b" || len(e.Details) != 3 ||
		!strings.HasPrefix(e.Details[0], "deploy/a.yaml:5:3: spec.replica") || !strings.HasPrefix(e.Details[2], "deploy/b.yaml:1: invalid YAML") {
		t.Errorf("ParseFiles of bad files: %v", err)
	}
}
