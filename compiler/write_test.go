package compiler

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

func loadPlans(t *testing.T, paths ...string) []NodePlan {
	t.Helper()
	res, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := res.Plans()
	if err != nil {
		t.Fatalf("%v: %v", err, res.Findings)
	}
	return plans
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestWritePlansIdempotentAndRemovesStale(t *testing.T) {
	out := t.TempDir()
	all := loadPlans(t, "../examples/ha-proxy", "../examples/shared-segment")
	st, err := WritePlans(out, all)
	if err != nil || st.Written != len(all) || st.Unchanged != 0 {
		t.Fatalf("first write: %+v %v", st, err)
	}
	first := map[string][]byte{}
	for _, f := range listFiles(t, out) {
		first[f], _ = os.ReadFile(filepath.Join(out, f))
	}
	// A file mwgc did not write, inside a cluster directory and beside it.
	foreign := []string{"web-proxy/notes.txt", "README"}
	for _, f := range foreign {
		os.WriteFile(filepath.Join(out, f), []byte("mine"), 0o644)
	}

	// Same input: nothing rewritten, bytes identical.
	st, err = WritePlans(out, loadPlans(t, "../examples/ha-proxy", "../examples/shared-segment"))
	if err != nil || st.Written != 0 || st.Unchanged != len(all) || st.Removed != 0 {
		t.Fatalf("second write: %+v %v", st, err)
	}
	for f, b := range first {
		now, _ := os.ReadFile(filepath.Join(out, f))
		if string(now) != string(b) {
			t.Errorf("%s changed between identical compiles", f)
		}
	}

	// The ha-proxy cluster vanishes: its plans go, foreign files stay.
	some := loadPlans(t, "../examples/shared-segment")
	st, err = WritePlans(out, some)
	if err != nil || st.Removed != len(all)-len(some) {
		t.Fatalf("third write: %+v %v", st, err)
	}
	got := listFiles(t, out)
	want := []string{ManifestName, "README", "blue/blue-a.json", "blue/blue-b.json", "blue/blue-scan.json",
		"green/green-a.json", "green/green-b.json", "green/green-scan.json", "web-proxy/notes.txt"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files after removal:\n got %v\nwant %v", got, want)
	}
}

func TestManifestCannotPointOutside(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "plans")
	os.MkdirAll(out, 0o755)
	victim := filepath.Join(parent, "victim.json")
	os.WriteFile(victim, []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(out, ManifestName), []byte("../victim.json\n/etc/passwd\nx/../../victim.json\n"), 0o644)
	if _, err := WritePlans(out, loadPlans(t, "../examples/ha-proxy")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("a tampered manifest made mwgc remove a file outside the output: %v", err)
	}
}

// TestEditedPlanIsRewritten: a plan changed after compile (same size,
// different bytes, new mtime) is noticed and rewritten.
func TestEditedPlanIsRewritten(t *testing.T) {
	out := t.TempDir()
	plans := loadPlans(t, "../examples/ha-proxy")
	if _, err := WritePlans(out, plans); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "web-proxy", "proxy-a.json")
	orig, _ := os.ReadFile(path)
	edited := []byte(strings.Replace(string(orig), `"priority": 200`, `"priority": 201`, 1))
	if len(edited) != len(orig) || string(edited) == string(orig) {
		t.Fatal("test edit failed")
	}
	os.WriteFile(path, edited, 0o644)
	st, err := WritePlans(out, plans)
	if err != nil || st.Written != 1 || st.Unchanged != len(plans)-1 {
		t.Fatalf("%+v %v", st, err)
	}
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Error("edited plan was not restored")
	}
}

// TestManifestIsDeterministic: two compiles of the same input into two
// directories, at different times, give byte-identical directories,
// manifest included; the manifest names each plan by its digest, and
// WritePlans reports each plan with that digest.
func TestManifestIsDeterministic(t *testing.T) {
	plans := loadPlans(t, "../examples/ha-proxy", "../examples/shared-segment")
	a, b := t.TempDir(), t.TempDir()
	st, err := WritePlans(a, plans)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if _, err := WritePlans(b, plans); err != nil {
		t.Fatal(err)
	}
	// Touch every plan of b: a modification time must not matter.
	for _, f := range listFiles(t, b) {
		os.Chtimes(filepath.Join(b, f), later, later)
	}
	if _, err := WritePlans(b, plans); err != nil {
		t.Fatal(err)
	}
	fa, fb := listFiles(t, a), listFiles(t, b)
	if !slices.Equal(fa, fb) {
		t.Fatalf("files differ: %v vs %v", fa, fb)
	}
	for _, f := range fa {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if string(x) != string(y) {
			t.Errorf("%s differs between two compiles of the same input:\n%s\n%s", f, x, y)
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(a, ManifestName))
	if len(st.Plans) != len(plans) {
		t.Fatalf("WritePlans reported %d plans, want %d", len(st.Plans), len(plans))
	}
	for i, pf := range st.Plans {
		want, _ := plan.ComputeDigest(plans[i].Plan)
		if pf.Digest != want || pf.Path != plans[i].Cluster+"/"+plans[i].Node+".json" || !pf.Written {
			t.Errorf("plan %d reported as %+v, want digest %s", i, pf, want)
		}
		if !strings.Contains(string(manifest), pf.Path+" "+pf.Digest+"\n") {
			t.Errorf("manifest does not list %s %s:\n%s", pf.Path, pf.Digest, manifest)
		}
	}
}
