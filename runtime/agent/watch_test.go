package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A plan directory that is itself a symlink, swapped to a new target the
// way deploy tools do (a new link renamed over the old one): the swap is
// seen, and so are later changes in the new target, not in the old one.
func TestWatchFollowsASwappedDirectorySymlink(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(root, d, "plan.json"), d)
	}
	link := filepath.Join(root, "plan")
	if err := os.Symlink("v1", link); err != nil {
		t.Fatal(err)
	}
	changes := make(chan struct{}, 16)
	stop, err := watchPlanDir(filepath.Join(link, "plan.json"), 20*time.Millisecond, slog.New(slog.DiscardHandler), func() { changes <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-changes:
			if !want {
				t.Errorf("%s: reported as a change of the plan directory", what)
			}
		case <-time.After(500 * time.Millisecond):
			if want {
				t.Errorf("%s: not seen", what)
			}
		}
	}
	write(t, filepath.Join(root, "v1", "plan.json"), "v1 again")
	expect("a change in the first target", true)

	if err := os.Symlink("v2", filepath.Join(root, "plan.new")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "plan.new"), link); err != nil {
		t.Fatal(err)
	}
	expect("the swap of the directory symlink", true)
	write(t, filepath.Join(root, "v2", "plan.json"), "v2 again")
	expect("a change in the new target", true)
	write(t, filepath.Join(root, "v1", "plan.json"), "old")
	expect("a change in the old target", false)
	write(t, filepath.Join(root, "unrelated"), "x")
	expect("another file beside the plan directory", false)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
