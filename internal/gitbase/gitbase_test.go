package gitbase

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func sh(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// repo makes a repository with clusters/a.cue committed as "v1" and then
// changed in the working tree to "v2".
func repo(t *testing.T) string {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	sh(t, dir, "git", "init", "-q", "-b", "main")
	write(t, filepath.Join(dir, "clusters/a.cue"), "v1")
	write(t, filepath.Join(dir, "README"), "r")
	sh(t, dir, "git", "add", ".")
	sh(t, dir, "git", "commit", "-qm", "one")
	write(t, filepath.Join(dir, "clusters/a.cue"), "v2")
	write(t, filepath.Join(dir, "fresh/b.cue"), "new")
	return dir
}

func TestGitRef(t *testing.T) {
	dir := repo(t)
	ctx := context.Background()
	// From the top level and from a subdirectory: the same file at HEAD.
	for _, tc := range []struct{ wd, path string }{{dir, "clusters"}, {filepath.Join(dir, "clusters"), "."}, {dir, filepath.Join(dir, "clusters")}} {
		b, err := Resolve(ctx, tc.wd, "main", []string{tc.path})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Paths) != 1 || len(b.Missing) != 0 {
			t.Fatalf("%+v", b)
		}
		if got := read(t, filepath.Join(b.Paths[0], "a.cue")); got != "v1" {
			t.Errorf("wd %s path %s: base file says %q, want the committed v1", tc.wd, tc.path, got)
		}
		tmp := b.tmp
		b.Close()
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("Close left %s", tmp)
		}
	}
	// A path the commit lacks: an empty base, not an error.
	b, err := Resolve(ctx, dir, "HEAD", []string{"fresh"})
	if err != nil || len(b.Paths) != 0 || len(b.Missing) != 1 {
		t.Errorf("missing path: %+v, %v", b, err)
	}
	for _, bad := range []string{"no-such-ref", "--output=/tmp/x"} {
		if _, err := Resolve(ctx, dir, bad, nil); err == nil || !strings.Contains(err.Error(), "neither a directory nor a commit") {
			t.Errorf("ref %q: err %v", bad, err)
		}
	}
	if _, err := Resolve(ctx, dir, "HEAD", []string{"/"}); err == nil {
		t.Error("a path outside the repository was accepted")
	}
	if _, err := Resolve(ctx, t.TempDir(), "HEAD", nil); err == nil {
		t.Error("a ref outside any repository was accepted")
	}
}

func TestDirectory(t *testing.T) {
	base := t.TempDir()
	write(t, filepath.Join(base, "clusters/a.cue"), "old")
	b, err := Resolve(context.Background(), t.TempDir(), base, []string{"clusters", "other"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Paths) != 1 || read(t, filepath.Join(b.Paths[0], "a.cue")) != "old" || len(b.Missing) != 1 || b.Missing[0] != "other" {
		t.Errorf("%+v", b)
	}
	if _, err := Resolve(context.Background(), t.TempDir(), base, []string{"/etc"}); err == nil {
		t.Error("an absolute path with a base directory was accepted")
	}
}

func TestUntarRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../evil", "/abs", "a/../../evil"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
		tw.Close()
		if err := untar(&buf, t.TempDir()); err == nil {
			t.Errorf("%q was written", name)
		}
	}
}
