package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// allowedDeps lists, for each of our packages (module-relative, "*" suffix
// for a subtree), which of our packages it may import. DO NOT CHANGE THIS DATA
// TO FIX A BUILD: change it only in a reviewed commit that argues for the edge.
var allowedDeps = map[string][]string{
	"log/batch": {},
	"log/vfs":   {},
	"log":       {"log/batch", "log/vfs"},
	// broker/wire sums large request frames as they arrive (batch.BlockSums)
	// so that Produce batches are CRC-checked without reading them again;
	// log/batch is a pure format package (no I/O), as for broker/group.
	"broker/wire":                  {"log/batch"},
	"broker/metadata":              {},
	"broker/internal/purgatory":    {},
	"broker/internal/fetchsession": {},
	"broker/controller":            {"broker/metadata"},
	"broker/replica":               {"log", "log/batch", "log/vfs", "broker/metadata", "broker/wire", "broker/internal/purgatory"},
	// broker/group encodes __consumer_offsets records as v2 batches and
	// reads them back on load; log/batch is a pure format package (no I/O),
	// so this edge does not let the coordinator reach storage.
	"broker/group":      {"broker/internal/purgatory", "log/batch"},
	"broker/txn":        {"broker/internal/purgatory", "log/batch"}, // like broker/group, for __transaction_state records
	"broker":            {"broker/*", "log", "log/batch", "log/vfs"},
	"consumer*":         {"consumer*"},
	"outbox*":           {"outbox*"},
	"saga*":             {"saga*", "consumer*"},
	"cmd/weir/weirtest": {},
	"compat*":           {},
	"cmd/weir":          {"*"},
	"internal/*":        {"internal/*"},
	// The store floor of internal/kfakeserve sums request frames and checks
	// batch CRCs as broker/wire and log do, so that it costs what Weir's
	// reading and checking cost; log/batch is a pure format package (no I/O).
	"internal/kfakeserve": {"internal/*", "log/batch"},
}

// bannedImports may not be imported by any of our packages.
var bannedImports = map[string]string{
	"log":                   "our storage package is named log; use log/slog",
	"io/ioutil":             "deprecated; use io and os",
	"github.com/pkg/errors": "use fmt.Errorf with %w and errors.Is/As",
}

func matchRule(pattern, pkg string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "/*"):
		return strings.HasPrefix(pkg, strings.TrimSuffix(pattern, "*"))
	case strings.HasSuffix(pattern, "*"):
		p := strings.TrimSuffix(pattern, "*")
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pattern == pkg
}

func rulesFor(pkg string) ([]string, bool) {
	if r, ok := allowedDeps[pkg]; ok {
		return r, true
	}
	for pat, r := range allowedDeps {
		if strings.Contains(pat, "*") && matchRule(pat, pkg) {
			return r, true
		}
	}
	return nil, false
}

func TestPackageDependencies(t *testing.T) {
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	module := strings.TrimSpace(string(mod))
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath  string
			Imports     []string
			TestImports []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rules, ok := rulesFor(rel)
		if !ok {
			t.Errorf("package %s has no entry in allowedDeps", rel)
			continue
		}
		for _, imp := range p.Imports {
			if why, bad := bannedImports[imp]; bad {
				t.Errorf("%s imports %s: %s", rel, imp, why)
			}
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			allowed := false
			for _, r := range rules {
				if matchRule(r, dep) {
					allowed = true
					break
				}
			}
			if !allowed {
				t.Errorf("%s may not import %s", rel, dep)
			}
		}
	}
	if seen == 0 {
		t.Fatal("go list returned no packages")
	}
}
