package plandiff

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/mwgc/mwgc/compiler"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/*.txtar")

// TestGolden runs every before/after pair in testdata/*.txtar: files under
// before/ and after/ are two versions of a cluster repository (a side
// without files is an empty repository); want.txt holds the text report,
// want.md and want.json, where present, the other formats.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test pairs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			sections := map[string]int{}
			for i, f := range ar.Files {
				sections[f.Name] = i
				if strings.HasPrefix(f.Name, "before/") || strings.HasPrefix(f.Name, "after/") {
					p := filepath.Join(dir, f.Name)
					os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := Diff(snapshotOf(t, filepath.Join(dir, "before")), snapshotOf(t, filepath.Join(dir, "after")))
			r.Base, r.Head = "before", "after"
			outputs := map[string]func(*bytes.Buffer) error{
				"want.txt":  func(b *bytes.Buffer) error { return WriteText(b, r) },
				"want.md":   func(b *bytes.Buffer) error { return WriteMarkdown(b, r) },
				"want.json": func(b *bytes.Buffer) error { return WriteJSON(b, r) },
			}
			changed := false
			for name, write := range outputs {
				i, ok := sections[name]
				if !ok && name != "want.txt" {
					continue
				}
				var got bytes.Buffer
				if err := write(&got); err != nil {
					t.Fatal(err)
				}
				if name == "want.json" {
					var back Report
					if err := json.Unmarshal(got.Bytes(), &back); err != nil {
						t.Fatalf("JSON does not decode: %v", err)
					}
				}
				if !ok {
					ar.Files = append(ar.Files, txtar.File{Name: name, Data: got.Bytes()})
					changed = true
					continue
				}
				if *update {
					if !bytes.Equal(ar.Files[i].Data, got.Bytes()) {
						ar.Files[i].Data = got.Bytes()
						changed = true
					}
					continue
				}
				if diff := cmp.Diff(string(ar.Files[i].Data), got.String()); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			if changed {
				if !*update {
					t.Errorf("%s has no want.txt; run go test -update and read the result", file)
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// snapshotOf compiles dir; a missing dir is an empty repository.
func snapshotOf(t *testing.T, dir string) *compiler.Snapshot {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	res, err := compiler.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := res.Snapshot()
	if err != nil {
		var b bytes.Buffer
		compiler.WriteText(&b, res.Findings)
		t.Fatalf("%s does not compile:\n%s", dir, b.String())
	}
	return s
}
