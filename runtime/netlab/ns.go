package netlab

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// doInNamespace runs fn on a locked OS thread switched into the named network
// namespace. Sockets opened by fn stay in that namespace after fn returns;
// goroutines fn starts do not inherit it.
func doInNamespace(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: current namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: enter namespace %s: %w", name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine instead of
		// running other goroutines in the wrong namespace.
		return fmt.Errorf("netlab: leave namespace %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}
