package slipway_test

import (
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

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
// spec, analysis, engine); adapters beside each other (sqlite, httpapi, ofrep, platforms,
// providers), none importing another; only cmd/slipway wires them together. The proxy's
// fast path (proxy/fastpath) imports nothing of the project: the proxy drives it.
var allowed = map[string][]string{
	"":                    {},
	"analysis":            {""},
	"auth":                {""},
	"flags":               {""},
	"spec":                {"", "flags"},
	"engine":              {"", "analysis", "flags", "spec"},
	"sqlite":              {""},
	"httpapi":             {""},
	"ofrep":               {"", "flags"},
	"proxy":               {"", "proxy/fastpath"},
	"proxy/fastpath":      {},
	"dataplane":           {"", "proxy"},
	"handover":            {"proxy/fastpath"},
	"platform/local":      {"", "dataplane", "handover", "proxy"},
	"platform/sim":        {""},
	"metric/builtin":      {"", "flags"},
	"metric/job":          {""},
	"metric/web":          {""},
	"demo":                {},
	"slipwaytest":         {""},
	"httpapi/apitest":     {"", "httpapi"},
	"e2e":                 {},
	"examples/ramp-hook":  {},
	"bench/flags":         {"flags", "ofrep"},
	"bench/proxy/backend": {},
	"bench/proxy/slipway": {"", "proxy"},
	"cmd/slipway": {"", "analysis", "auth", "dataplane", "demo", "engine", "flags", "handover", "httpapi", "metric/builtin",
		"metric/job", "metric/web", "ofrep", "platform/local", "platform/sim", "proxy", "spec", "sqlite"},
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

// projectImports returns the direct project imports of every package of the module.
func projectImports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := rel(f[0])
		imports[pkg] = []string{}
		for _, d := range f[1:] {
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

// testSupport lists the packages written for tests only, with the project packages each may
// import.
var testSupport = map[string][]string{
	"slipway.dev/slipway/slipwaytest":     {"slipway.dev/slipway"},
	"slipway.dev/slipway/httpapi/apitest": {"slipway.dev/slipway", "slipway.dev/slipway/httpapi"},
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
