package roost_test

// This test encodes roost's import rules (shared/STYLE.md "Layout and
// boundaries") the way go/build/deps_test.go encodes the standard library's:
// every import edge of every package, tests included, must be allowed here.
// A rule is never loosened to make a build pass.

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/roost-rt/roost"

// rule lists what a package may import besides the standard library. Entries
// ending in "/" are prefixes. test lists what its tests may add.
type rule struct {
	allow []string
	test  []string
}

var testKit = []string{"github.com/stretchr/testify/", "go.uber.org/goleak", "pgregory.net/rapid"}

var rules = map[string]rule{
	"shard":             {allow: []string{"github.com/cespare/xxhash/v2", "golang.org/x/sys/cpu"}, test: testKit},
	"netpoll":           {allow: []string{"golang.org/x/sys/unix"}, test: testKit},
	"hub/internal/wire": {allow: []string{"github.com/gobwas/ws", "github.com/gobwas/ws/", "github.com/gobwas/pool/"}, test: testKit},
	"hub": {
		allow: []string{module + "/shard", module + "/netpoll", module + "/hub/internal/wire", "github.com/gobwas/ws", "github.com/gobwas/ws/"},
		test:  append([]string{"github.com/gorilla/websocket"}, testKit...),
	},
	"hub/auth":    {allow: []string{module + "/hub", "github.com/golang-jwt/jwt/v5"}, test: testKit},
	"hub/httpapi": {allow: []string{module + "/hub", "github.com/prometheus/client_golang/", "github.com/prometheus/client_model/"}, test: append([]string{"github.com/gorilla/websocket", "github.com/gobwas/ws", "github.com/gobwas/ws/"}, testKit...)},
	"cluster": {
		allow: []string{module + "/hub", "github.com/redis/go-redis/v9"},
		test:  append([]string{"github.com/Shopify/toxiproxy/v2", "github.com/Shopify/toxiproxy/v2/", "github.com/gorilla/websocket", "github.com/gobwas/ws", "github.com/gobwas/ws/"}, testKit...),
	},
	"bench": {
		allow: []string{"github.com/gorilla/websocket", "github.com/gobwas/ws", "github.com/gobwas/ws/", "github.com/HdrHistogram/hdrhistogram-go", "github.com/vbauerster/mpb/v8", "github.com/vbauerster/mpb/v8/", "gonum.org/v1/plot", "gonum.org/v1/plot/", "golang.org/x/sys/unix"},
		// The harness measures the wire; its tests may start a real hub to measure.
		test: append([]string{module + "/hub", module + "/hub/httpapi", module + "/cluster"}, testKit...),
	},
}

type pkg struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func allowed(list []string, imp string) bool {
	for _, a := range list {
		if imp == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a)) {
			return true
		}
	}
	return false
}

// ruleFor returns the rule of a package path relative to the module, and
// whether the package is under cmd/ (which may import anything).
func ruleFor(rel string) (rule, bool, bool) {
	if rel == "cmd" || strings.HasPrefix(rel, "cmd/") {
		return rule{}, true, true
	}
	r, ok := rules[rel]
	return r, false, ok
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	for _, p := range pkgs {
		if p.ImportPath == module { // this test's own directory
			continue
		}
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		r, isCmd, known := ruleFor(rel)
		if !known {
			t.Errorf("%s: no import rule; add one to deps_test.go that follows shared/STYLE.md", rel)
			continue
		}
		check := func(imps []string, list []string, what string) {
			for _, imp := range imps {
				if strings.HasPrefix(imp, module+"/cmd") && imp != p.ImportPath {
					t.Errorf("%s %s imports %s: nothing imports cmd", rel, what, imp)
				}
				if isCmd || isStd(imp) || imp == p.ImportPath || imp == "C" {
					continue
				}
				if !allowed(list, imp) {
					t.Errorf("%s %s imports %s, which its rule does not allow", rel, what, imp)
				}
			}
		}
		check(p.Imports, r.allow, "")
		testList := append(append([]string{}, r.allow...), r.test...)
		check(p.TestImports, testList, "(tests)")
		check(p.XTestImports, testList, "(tests)")
	}
}

func TestRulesRejectForbiddenEdges(t *testing.T) {
	cases := []struct {
		pkg, imp string
	}{
		{"shard", module + "/netpoll"},
		{"netpoll", module + "/shard"},
		{"hub", module + "/cluster"},
		{"hub", module + "/hub/auth"},
		{"hub", module + "/hub/httpapi"},
		{"bench", module + "/hub"},
		{"cluster", module + "/bench"},
	}
	for _, c := range cases {
		r, _, ok := ruleFor(c.pkg)
		if !ok {
			t.Fatalf("no rule for %s", c.pkg)
		}
		if allowed(r.allow, c.imp) {
			t.Errorf("rule for %s allows %s", c.pkg, c.imp)
		}
	}
}
