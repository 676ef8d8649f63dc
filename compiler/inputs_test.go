package compiler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCollectInputs(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"a/x.cue", "a/y.cue", "a/b/z.cue", "a/.hidden/h.cue", "a/_skip/s.cue", "a/cue.mod/module.cue", "a/testdata/t.cue", "a/notes.txt", "empty/readme"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	j := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }

	in, err := collectInputs([]string{j("a")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{j("a", "b"), j("a")}, in.dirs); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}

	// A file, then its whole directory: the directory wins.
	in, err = collectInputs([]string{j("a", "x.cue"), j("a", "x.cue"), j("a") + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.files[j("a")]) != 0 {
		t.Errorf("files named in a directory that is loaded whole: %v", in.files)
	}
	in, err = collectInputs([]string{j("a", "x.cue"), j("a", "x.cue")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"x.cue"}, in.files[j("a")]); diff != "" {
		t.Errorf("named files (-want +got):\n%s", diff)
	}

	for _, bad := range [][]string{{j("empty")}, {j("a", "notes.txt")}, {j("missing")}} {
		if _, err := collectInputs(bad); err == nil {
			t.Errorf("collectInputs(%v) accepted", bad)
		}
	}
}
