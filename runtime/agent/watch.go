package agent

import (
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
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(a.cfg.PlanPath)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		debounce := time.NewTimer(time.Hour)
		debounce.Stop()
		for {
			select {
			case <-done:
				debounce.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				debounce.Reset(a.cfg.Debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow loses events: read the plan anyway.
				a.log.Warn("watching the plan directory", "dir", dir, "err", err)
				debounce.Reset(a.cfg.Debounce)
			case <-debounce.C:
				a.post(func() { a.readPlan(false) })
			}
		}
	}()
	return func() {
		close(done)
		w.Close()
		<-finished
	}, nil
}
