package compiler

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files under examples/")

// validExamples are the repositories `make examples` validates and
// compiles together.
var validExamples = []string{"examples/ha-proxy", "examples/transparent-router", "examples/shared-segment", "examples/distribution"}

// toRepoRoot makes positions read as they do for a user in the repository
// root (examples/...).
func toRepoRoot(t *testing.T) {
	t.Chdir("..")
}

func TestValidExamplesTogether(t *testing.T) {
	toRepoRoot(t)
	res, err := Load(validExamples)
	if err != nil {
		t.Fatal(err)
	}
	if HasErrors(res.Findings) {
		var b bytes.Buffer
		WriteText(&b, res.Findings)
		t.Fatalf("bundled examples are invalid together:\n%s", &b)
	}
}

// TestValidExamplePlans compiles each valid example on its own and compares
// every plan with examples/<name>/plans/<cluster>/<node>.json.
func TestValidExamplePlans(t *testing.T) {
	toRepoRoot(t)
	for _, ex := range validExamples {
		t.Run(filepath.Base(ex), func(t *testing.T) {
			res, err := Load([]string{ex})
			if err != nil {
				t.Fatal(err)
			}
			plans, err := res.Plans()
			if err != nil {
				var b bytes.Buffer
				WriteText(&b, res.Findings)
				t.Fatalf("%v\n%s", err, &b)
			}
			goldenDir := filepath.Join(ex, "plans")
			if *update {
				os.RemoveAll(goldenDir)
				if _, err := WritePlans(goldenDir, plans); err != nil {
					t.Fatal(err)
				}
			}
			// The manifest is golden too: a compiled directory is
			// byte-identical for identical input.
			fresh := t.TempDir()
			if _, err := WritePlans(fresh, plans); err != nil {
				t.Fatal(err)
			}
			gotManifest, _ := os.ReadFile(filepath.Join(fresh, ManifestName))
			wantManifest, err := os.ReadFile(filepath.Join(goldenDir, ManifestName))
			if err != nil {
				t.Fatalf("%v (run go test ./compiler -update)", err)
			}
			if diff := cmp.Diff(string(wantManifest), string(gotManifest)); diff != "" {
				t.Errorf("%s differs (-golden +got):\n%s", ManifestName, diff)
			}
			var want []string
			for _, np := range plans {
				got, err := plan.Encode(np.Plan)
				if err != nil {
					t.Fatal(err)
				}
				name := filepath.Join(goldenDir, np.Cluster, np.Node+".json")
				want = append(want, filepath.ToSlash(filepath.Join(np.Cluster, np.Node+".json")))
				golden, err := os.ReadFile(name)
				if err != nil {
					t.Fatalf("%v (run go test ./compiler -update)", err)
				}
				if diff := cmp.Diff(string(golden), string(got)); diff != "" {
					t.Errorf("%s differs from the compiled plan (-golden +got):\n%s", name, diff)
				}
				// The agent's strict decoder accepts the plan, and it
				// round-trips to the same bytes.
				p, err := plan.Decode(got)
				if err != nil {
					t.Fatalf("%s: plan.Decode: %v", name, err)
				}
				again, err := plan.Encode(p)
				if err != nil || !bytes.Equal(again, got) {
					t.Errorf("%s: decode/encode does not round-trip (err %v)", name, err)
				}
			}
			// No stray golden plans for nodes that no longer exist.
			var have []string
			filepath.WalkDir(goldenDir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
					rel, _ := filepath.Rel(goldenDir, path)
					have = append(have, filepath.ToSlash(rel))
				}
				return nil
			})
			slices.Sort(want)
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("golden plans differ from compiled set (-compiled +golden):\n%s", diff)
			}
		})
	}
}

// warningRules are rules whose example is valid: they report a warning or
// a note, and compile still works.
var warningRules = map[string]Severity{
	"single-director":             SeverityWarning,
	"management-unauthenticated":  SeverityWarning,
	"checksum-interop":            SeverityWarning,
	"segment-waived":              SeverityNote,
	"vrrp-unauthenticated-waived": SeverityNote,
	"vrrp-unicast-waived":         SeverityNote,
	"vrrp-auth-transitional":      SeverityWarning,
	"schema-copy":                 SeverityWarning,
	"distribution-load-weighting": SeverityWarning,
}

// TestInvalidExamples checks every examples/invalid/<rule> against its
// expected.txt, and that the rule it is named after fires.
func TestInvalidExamples(t *testing.T) {
	toRepoRoot(t)
	dirs, err := os.ReadDir("examples/invalid")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		rule := d.Name()
		t.Run(rule, func(t *testing.T) {
			dir := filepath.Join("examples", "invalid", rule)
			res, err := Load([]string{dir})
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteText(&b, res.Findings); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, "expected.txt")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./compiler -update)", err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("findings differ from %s (-want +got):\n%s", golden, diff)
			}
			wantSev, valid := warningRules[rule]
			if !valid {
				wantSev = SeverityError
			}
			fired := false
			for _, f := range res.Findings {
				if f.Rule == rule && f.Severity == wantSev {
					fired = true
				}
				if (f.Pos.Line == 0 && f.Rule != "load") || !strings.HasPrefix(f.Pos.File, dir) {
					t.Errorf("finding %v is not positioned in the example's own files", f)
				}
			}
			if !fired {
				t.Errorf("rule %s (%v) did not fire", rule, wantSev)
			}
			if got := HasErrors(res.Findings); got == valid {
				t.Errorf("HasErrors = %v, want %v", got, !valid)
			}
			if _, err := res.Plans(); (err == nil) != valid {
				t.Errorf("Plans error = %v, want error %v", err, !valid)
			}
		})
	}
}

// TestEveryRuleHasExample keeps the rule table, README and examples in
// step: each rule the checker can emit has an invalid example.
func TestEveryRuleHasExample(t *testing.T) {
	toRepoRoot(t)
	for _, r := range Rules {
		if _, err := os.Stat(filepath.Join("examples", "invalid", r.ID, "expected.txt")); err != nil {
			t.Errorf("rule %s has no example: %v", r.ID, err)
		}
	}
	readme, err := os.ReadFile("compiler/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Rules {
		if !strings.Contains(string(readme), "`"+r.ID+"`") {
			t.Errorf("rule %s is missing from compiler/README.md", r.ID)
		}
	}
}
