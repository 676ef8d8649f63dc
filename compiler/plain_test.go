package compiler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/compiler/internal/benchrepo"
)

// exported decodes inst the slow way, from the unified CUE value.
func exported(t *testing.T, inst *instance) *parsed {
	t.Helper()
	b, err := inst.value.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var p parsed
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// TestPlainDataMatchesCUE: reading plain data from the syntax tree (with
// the schema's defaults filled in Go) gives exactly the model that
// exporting the unified CUE value gives.
func TestPlainDataMatchesCUE(t *testing.T) {
	gen := t.TempDir()
	if _, err := benchrepo.Generate(gen, 30); err != nil {
		t.Fatal(err)
	}
	dirs := []string{gen, "../examples/ha-proxy", "../examples/shared-segment", "../examples/transparent-router"}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			l, err := newLoader()
			if err != nil {
				t.Fatal(err)
			}
			inst := l.load(dir, nil)
			if inst == nil || inst.hasErrors {
				t.Fatalf("%s does not load cleanly: %v", dir, l.findings)
			}
			want := exported(t, inst)
			got := plainData(inst.files)
			if base := filepath.Base(dir); base == "transparent-router" || base == "shared-segment" {
				// A comprehension, a reference: not plain. The fallback
				// exports the user's value and fills in defaults in Go.
				if got != nil {
					t.Fatal("plainData accepted a package that is not plain data")
				}
				var p parsed
				b, err := inst.user.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatal(err)
				}
				got = &p
			}
			if got == nil {
				t.Fatal("plainData refused plain data")
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(parsed{})); diff != "" {
				t.Errorf("model differs (-export +plain):\n%s", diff)
			}
		})
	}
}

func TestPlainDataRefuses(t *testing.T) {
	for name, src := range map[string]string{
		"reference":     "a: 1\nb: a\n",
		"definition":    "#A: 1\n",
		"hidden":        "_a: 1\n",
		"optional":      "a?: 1\n",
		"disjunction":   "a: *1 | 2\n",
		"interpolation": "x: \"a\"\n\"\\(x)\": 1\n",
		"embedding":     "{a: 1}\n",
		"float":         "a: 1.5\n",
		"bytes":         "a: 'x'\n",
		"list-lengths":  "a: [1]\na: [1, 2]\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x.cue"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			l, _ := newLoader()
			inst := l.load(dir, nil)
			if inst == nil {
				return // did not even load: nothing to refuse
			}
			if p := plainData(inst.files); p != nil {
				t.Errorf("plainData accepted %q", src)
			}
		})
	}
}
