package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// needRoot skips without root, except under CI=true where the missing
// prerequisite fails the test.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (network namespaces); CI=true does not allow skipping it")
	}
	t.Skip("needs root (network namespaces)")
}

// newTestNetns makes an anonymous network namespace; it vanishes when the
// handle is closed (or the test process exits), whatever the test did.
func newTestNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // also moves this thread into it
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of
		// running others in the wrong namespace.
		t.Fatal(err)
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close() })
	return ns
}

// TestLinuxLinkWatcher runs the rtnetlink watcher in a namespace of its
// own: the first listing is there when it returns, admin state and carrier
// changes and deletions are reported, and after a subscription error a
// fresh listing catches a deletion that happened while unsubscribed.
func TestLinuxLinkWatcher(t *testing.T) {
	needRoot(t)
	ns := newTestNetns(t)
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	var mu sync.Mutex
	var inbox []linkBatch
	var fullListings, warnings atomic.Int32
	report := func(full bool, links []LinkState) {
		if full {
			fullListings.Add(1)
		}
		mu.Lock()
		inbox = append(inbox, linkBatch{full, slices.Clone(links)})
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := startLinkWatcher(ctx, ns, report, func(error) { warnings.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	tr := &linkView{byIndex: map[int]LinkState{}}
	observe := func() {
		mu.Lock()
		batches := inbox
		inbox = nil
		mu.Unlock()
		for _, b := range batches {
			tr.observe(b.full, b.links)
		}
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for observe(); !cond(); observe() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reported within 5s (down: %v)", what, tr.down())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// The listing came before startLinkWatcher returned: lo of a new
	// namespace is down.
	observe()
	if fullListings.Load() != 1 {
		t.Fatalf("%d full listings before return, want 1", fullListings.Load())
	}
	tr.watched = []string{"lo", "v0"}
	if got := fmt.Sprint(tr.down()); got != "[lo v0]" {
		t.Fatalf("down after the first listing: %s, want [lo v0] (lo down, v0 missing)", got)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	lo, err := h.LinkByName("lo")
	must(err)
	must(h.LinkSetUp(lo))
	wait("lo up (operational state unknown counts as up)", func() bool { return tr.up("lo") })

	// A veth end is up only with carrier, i.e. while its peer is up too.
	must(h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v0"}, PeerName: "v1"}))
	v0, err := h.LinkByName("v0")
	must(err)
	v1, err := h.LinkByName("v1")
	must(err)
	must(h.LinkSetUp(v0))
	time.Sleep(50 * time.Millisecond)
	observe()
	if tr.up("v0") {
		t.Fatal("v0 counted as up without carrier (peer v1 down)")
	}
	must(h.LinkSetUp(v1))
	wait("v0 up with carrier", func() bool { return tr.up("v0") && len(tr.down()) == 0 })
	must(h.LinkSetDown(v1))
	wait("carrier loss", func() bool { return !tr.up("v0") })
	must(h.LinkSetUp(v1))
	wait("carrier back", func() bool { return tr.up("v0") })

	// A subscription error: the watcher drops the subscription (warns
	// first), pauses, subscribes and lists again. The deletion in the gap
	// reaches no subscription; only the new listing can show it.
	w.errs <- errors.New("test: lost notifications")
	wait("warning", func() bool { return warnings.Load() > 0 })
	must(h.LinkDel(v0))
	wait("deletion seen through the new listing", func() bool { return !tr.up("v0") })
	if n := fullListings.Load(); n != 2 {
		t.Errorf("%d full listings, want 2 (start and resubscription)", n)
	}
	if got := fmt.Sprint(tr.down()); got != "[v0]" {
		t.Errorf("down: %s, want [v0]", got)
	}

	// And the new subscription reports changes again.
	must(h.LinkSetDown(lo))
	wait("lo down after resubscribing", func() bool { return !tr.up("lo") })
}

type linkBatch struct {
	full  bool
	links []LinkState
}

// linkView is what the reports say, read as the node reads them: by
// index, a full listing replacing everything; a name not listed is down.
type linkView struct {
	byIndex map[int]LinkState
	watched []string
}

func (v *linkView) observe(full bool, links []LinkState) {
	if full {
		clear(v.byIndex)
	}
	for _, l := range links {
		if l.Gone {
			delete(v.byIndex, l.Index)
		} else {
			v.byIndex[l.Index] = l
		}
	}
}

func (v *linkView) up(name string) bool {
	for _, l := range v.byIndex {
		if l.Name == name && l.Up {
			return true
		}
	}
	return false
}

func (v *linkView) down() []string {
	var out []string
	for _, n := range v.watched {
		if !v.up(n) {
			out = append(out, n)
		}
	}
	return out
}
