package slipway_test

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/architecture.md")

// deps lists the packages outside the standard library that pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestLayout_RootImportsStandardLibraryOnly guards the dependency direction: the domain
// package imports nothing of the project, no database and no Kubernetes.
func TestLayout_RootImportsStandardLibraryOnly(t *testing.T) {
	all, err := exec.Command("go", "list", "-deps", "slipway.dev/slipway").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(all)) {
		if d == "database/sql" || d == "net/http" {
			t.Errorf("package slipway imports %s; the domain holds no I/O adapters", d)
		}
	}
	for _, d := range deps(t, "slipway.dev/slipway") {
		switch {
		case d == "slipway.dev/slipway":
		default:
			t.Errorf("package slipway imports %s; it may import the standard library only", d)
		}
	}
}

// allowed lists, for every package of the module, the project packages its own code (not its
// tests) may import directly. A package missing from it fails the test, and so does a
// listed package that does not exist: a new package or import is a decision written here.
// The shape: the domain (the root package) at the bottom; pure engines above it (flags,
// validate, analysis, engine) and the readers of files (flagfile, spec); adapters beside
// each other (sqlite, httpapi, ofrep, platforms, providers), none importing another; only
// cmd/slipway wires them together. The proxy's fast path (proxy/fastpath) imports nothing
// of the project: the proxy drives it.
var allowed = map[string][]string{
	"":                     {},
	"analysis":             {"", "analysis/stats"},
	"analysis/stats":       {},
	"auth":                 {""},
	"flags":                {""},
	"flagfile":             {"", "flags"},
	"validate":             {"", "flags"},
	"spec":                 {"", "flagfile", "validate"},
	"engine":               {"", "analysis", "flagops", "flags", "progress", "validate"},
	"flagops":              {"", "analysis", "flags", "progress"},
	"progress":             {},
	"fleet":                {"", "engine", "handover"},
	"delivery":             {"", "progress", "validate"},
	"notify":               {""},
	"gitsource":            {"", "spec"},
	"insights":             {""},
	"sqlite":               {""},
	"httpapi":              {""},
	"ofrep":                {"", "flags"},
	"proxy":                {"", "proxy/fastpath"},
	"proxy/fastpath":       {},
	"dataplane":            {"", "proxy"},
	"handover":             {"proxy/fastpath"},
	"logfile":              {},
	"platform/local":       {"", "dataplane", "handover", "logfile", "proxy"},
	"platform/sim":         {""},
	"platform/kubernetes":  {""},
	"metric/builtin":       {"", "analysis/stats", "flags"},
	"metric/job":           {""},
	"metric/web":           {"", "analysis/stats"},
	"metric/prometheus":    {"", "analysis/stats"},
	"demo":                 {},
	"telemetry":            {""},
	"slipwaytest":          {""},
	"slipwaytest/kubetest": {},
	"kubesource":           {"", "spec"},
	"httpapi/apitest":      {"", "httpapi"},
	"e2e":                  {},
	"examples/ramp-hook":   {},
	"bench/flags":          {"flagfile", "flags", "ofrep"},
	"bench/proxy/backend":  {},
	"bench/proxy/slipway":  {"", "proxy"},
	"cmd/slipway-image":    {},
	"cmd/slipway": {"", "analysis", "auth", "dataplane", "delivery", "demo", "engine", "flagops", "flags", "fleet", "gitsource", "handover", "httpapi", "insights", "kubesource", "metric/builtin",
		"metric/job", "metric/prometheus", "metric/web", "notify", "ofrep", "platform/kubernetes", "platform/local", "platform/sim", "proxy", "spec", "sqlite", "telemetry"},
}

const module = "slipway.dev/slipway"

// rel names a package of the module relative to it ("" for the root).
func rel(pkg string) string {
	return strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
}

// layoutProblems checks the direct imports of every package (by module-relative name)
// against rules, and returns every problem.
func layoutProblems(rules, imports map[string][]string) []string {
	var out []string
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		allow, ok := rules[pkg]
		if !ok {
			out = append(out, fmt.Sprintf("package %q is not in the layout's allow-list; add it with the project packages it may import", pkg))
			continue
		}
		for _, d := range imports[pkg] {
			if !slices.Contains(allow, d) {
				out = append(out, fmt.Sprintf("package %q imports %q, which its allow-list does not name", pkg, d))
			}
		}
	}
	for _, pkg := range slices.Sorted(maps.Keys(rules)) {
		if _, ok := imports[pkg]; !ok {
			out = append(out, fmt.Sprintf("the allow-list names package %q, which does not exist", pkg))
		}
	}
	return out
}

// directImports returns, by module-relative name, what every package of the module imports
// directly (import paths as written).
func directImports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[rel(f[0])] = f[1:]
	}
	return imports
}

// projectImports returns the direct project imports of every package of the module.
func projectImports(t *testing.T) map[string][]string {
	t.Helper()
	imports := map[string][]string{}
	for pkg, all := range directImports(t) {
		imports[pkg] = []string{}
		for _, d := range all {
			if d == module || strings.HasPrefix(d, module+"/") {
				imports[pkg] = append(imports[pkg], rel(d))
			}
		}
	}
	return imports
}

// TestLayout_EveryImportIsAllowed holds every package to its allow-list.
func TestLayout_EveryImportIsAllowed(t *testing.T) {
	for _, p := range layoutProblems(allowed, projectImports(t)) {
		t.Error(p)
	}
}

// TestLayout_CatchesForbiddenImports shows what the check refuses: the engine importing the
// store, a package nobody listed, and a listed package that is gone.
func TestLayout_CatchesForbiddenImports(t *testing.T) {
	imports := projectImports(t)
	imports["engine"] = append(slices.Clone(imports["engine"]), "sqlite")
	imports["newpkg"] = []string{""}
	rules := maps.Clone(allowed)
	rules["gone"] = []string{""}
	got := strings.Join(layoutProblems(rules, imports), "\n")
	for _, want := range []string{
		`package "engine" imports "sqlite"`,
		`package "newpkg" is not in the layout's allow-list`,
		`names package "gone", which does not exist`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q do not say %s", got, want)
		}
	}
}

// yaml is the YAML parser.
const yaml = "gopkg.in/yaml.v3"

// yamlReaders lists the packages that may import yaml: the readers of files, spec (slipway
// files) and flagfile (flagd files), and cmd/slipway (YAML output).
var yamlReaders = []string{"cmd/slipway", "flagfile", "spec"}

// TestLayout_OnlyReadersParseYAML: no package but the readers imports the YAML parser, and
// the engine and the rules it checks a set by (validate) do not depend on it even
// indirectly: a set the API receives is JSON, checked without any file format's code.
// (cel-go, which analysis and validate use for conditions, brings go.yaml.in/yaml/v3 for
// its own environment files; that is another module and not the parser meant here.)
func TestLayout_OnlyReadersParseYAML(t *testing.T) {
	for pkg, imports := range directImports(t) {
		if slices.Contains(imports, yaml) && !slices.Contains(yamlReaders, pkg) {
			t.Errorf("package %q imports %s; only %s read YAML", pkg, yaml, strings.Join(yamlReaders, ", "))
		}
	}
	for _, pkg := range []string{"engine", "validate", "flags"} {
		if slices.Contains(deps(t, module+"/"+pkg), yaml) {
			t.Errorf("package %q depends on %s; it must not need the YAML parser, even through another package", pkg, yaml)
		}
	}
}

// testSupport lists the packages written for tests only, with the project packages each may
// import.
var testSupport = map[string][]string{
	"slipway.dev/slipway/slipwaytest":          {"slipway.dev/slipway"},
	"slipway.dev/slipway/httpapi/apitest":      {"slipway.dev/slipway", "slipway.dev/slipway/httpapi"},
	"slipway.dev/slipway/slipwaytest/kubetest": {},
}

// TestLayout_TestSupportStaysInTests keeps fakes and test servers out of the binary: no
// package's own code imports a test-support package, directly or not, and a test-support
// package imports only the project packages it stands beside.
func TestLayout_TestSupportStaysInTests(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		if _, ok := testSupport[pkg]; ok {
			continue
		}
		for _, d := range strings.Fields(deps) {
			if _, ok := testSupport[d]; ok {
				t.Errorf("package %s imports test-support package %s outside its _test.go files; only tests may import it", pkg, d)
			}
		}
	}
	for pkg, allowed := range testSupport {
		for _, d := range deps(t, pkg) {
			if d != pkg && (d == "slipway.dev/slipway" || strings.HasPrefix(d, "slipway.dev/slipway/")) && !slices.Contains(allowed, d) {
				t.Errorf("test-support package %s imports %s; it may import only %s", pkg, d, strings.Join(allowed, ", "))
			}
		}
	}
}

// The markers around docs/architecture.md's generated package table.
const (
	tableBegin = "<!-- packages: generated by TestArchitectureDoc_TableIsTheCode; go test -run TestArchitectureDoc -update . -->"
	tableEnd   = "<!-- end of packages -->"
)

// packageTable returns the markdown table of every package of the module: its doc comment's
// first sentence and the project packages it imports.
func packageTable(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	imports := projectImports(t)
	name := func(rel string) string {
		if rel == "" {
			return "`slipway` (root)"
		}
		return "`" + rel + "`"
	}
	var b strings.Builder
	b.WriteString("| package | what it is | imports (of the project) |\n|---|---|---|\n")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "\t")
		rel := rel(pkg)
		var deps []string
		for _, d := range imports[rel] {
			deps = append(deps, name(d))
		}
		if len(deps) == 0 {
			deps = []string{"none"}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name(rel), strings.ReplaceAll(doc, "|", "\\|"), strings.Join(deps, ", "))
	}
	return b.String()
}

// TestArchitectureDoc_TableIsTheCode keeps docs/architecture.md's package table what the
// code says: each package's doc comment and imports. -update rewrites it.
func TestArchitectureDoc_TableIsTheCode(t *testing.T) {
	const path = "docs/architecture.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated package table (the markers %q and %q)", path, tableBegin, tableEnd)
	}
	want := doc[:i+len(tableBegin)] + "\n\n" + packageTable(t) + "\n" + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the package table is not what the code says; run: go test -run TestArchitectureDoc -update .", path)
}
