package agent

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch follows the plan's directory, not the file: deploy tools and
// editors replace the file by rename, and Kubernetes swaps a "..data"
// symlink, either of which would silently end a watch on the file itself.
// Any event in the directory re-arms a debounce timer; when the directory
// has been quiet for Config.Debounce, the loop re-reads the plan (content it
// already runs or already refused is ignored there).
func (a *Agent) watch() (stop func(), err error) {
	return watchPlanDir(a.cfg.PlanPath, a.cfg.Debounce, a.log, func() { a.post(func() { a.readPlan(false) }) })
}

// watchPlanDir calls changed, debounced, after any change in the
// directory of planPath. The directory may itself be a symlink that a
// deploy tool swaps to a new target (ln -sfn, rename): a watch follows the
// target it was given, so the directory's parent is watched too, and when
// the directory's name there changes, the watch moves to the new target
// and changed is called.
func watchPlanDir(planPath string, debounce time.Duration, log *slog.Logger, changed func()) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(planPath)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	parent := filepath.Dir(dir)
	target, _ := filepath.EvalSymlinks(dir)
	if parent != dir {
		if err := w.Add(parent); err != nil {
			log.Warn("cannot watch the plan directory's parent; a swap of a symlinked plan directory is seen only on SIGHUP", "dir", parent, "err", err)
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		quiet := time.NewTimer(time.Hour)
		quiet.Stop()
		for {
			select {
			case <-done:
				quiet.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Dir(ev.Name) == parent && ev.Name != dir {
					continue // another entry of the parent directory
				}
				if ev.Name == dir {
					// The directory's entry changed: follow a new target.
					if now, err := filepath.EvalSymlinks(dir); err == nil && now != target {
						target = now
						w.Remove(dir) // the old target's watch; it may be gone already
						if err := w.Add(dir); err != nil {
							log.Warn("cannot watch the plan directory's new target", "dir", dir, "target", now, "err", err)
						}
					}
				} else if ev.Op == fsnotify.Chmod {
					continue
				}
				quiet.Reset(debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow loses events: read the plan anyway.
				log.Warn("watching the plan directory", "dir", dir, "err", err)
				quiet.Reset(debounce)
			case <-quiet.C:
				changed()
			}
		}
	}()
	return func() {
		close(done)
		w.Close()
		<-finished
	}, nil
}
