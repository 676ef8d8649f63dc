package agent

import (
	"slices"
	"sync"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// LinkState is one interface's link state as the kernel reports it.
type LinkState struct {
	Index int
	Name  string
	// Up: administratively up, carrier present and operationally up (or
	// unknown, as virtual devices without a carrier notion report).
	Up bool
	// Gone: the interface was deleted.
	Gone bool
}

// LinkReport receives link states from Network.WatchLinks. A full report
// lists every interface of the host: one it does not name does not exist.
// It must not block.
type LinkReport func(full bool, links []LinkState)

// linkTracker decides when the node must leave the VRRP election (Fault):
// while any interface one of its groups runs on is down or missing. A node
// that keeps advertising on its remaining links while one link is dead
// would win those segments while the peer wins the dead one's, and the
// sync groups of the two nodes would pull each other back and forth every
// Active_Down_Interval. It is pure: reports in, a decision out.
type linkTracker struct {
	// listed: a full listing has been seen, so an interface absent from
	// byIndex does not exist. Before that (no link watcher) the unknown
	// counts as up, so a host without netlink is never held in Fault.
	listed  bool
	byIndex map[int]LinkState
	watched []string // sorted, unique
	fault   bool
}

// faultChange is what an input did to the Fault decision.
type faultChange int

const (
	faultUnchanged faultChange = iota
	faultEntered
	faultLeft
)

func (c faultChange) String() string {
	switch c {
	case faultEntered:
		return "entered"
	case faultLeft:
		return "left"
	}
	return "unchanged"
}

func newLinkTracker() *linkTracker {
	return &linkTracker{byIndex: map[int]LinkState{}}
}

// Observe takes a report from the link watcher. Interfaces are kept by
// index, so a renamed interface is followed by its new name.
func (t *linkTracker) Observe(full bool, links []LinkState) faultChange {
	if full {
		t.listed = true
		clear(t.byIndex)
	}
	for _, l := range links {
		if l.Gone {
			delete(t.byIndex, l.Index)
			continue
		}
		t.byIndex[l.Index] = l
	}
	return t.decide()
}

// Watch sets the interfaces the node's groups run on.
func (t *linkTracker) Watch(names []string) faultChange {
	w := slices.Clone(names)
	slices.Sort(w)
	t.watched = slices.Compact(w)
	return t.decide()
}

// Watched is the sorted list of interfaces in use.
func (t *linkTracker) Watched() []string { return t.watched }

// Up reports whether the named interface counts as up.
func (t *linkTracker) Up(name string) bool {
	found := false
	for _, l := range t.byIndex {
		if l.Name == name {
			if l.Up {
				return true
			}
			found = true
		}
	}
	return !found && !t.listed
}

// Down lists the watched interfaces that are down or missing, sorted.
func (t *linkTracker) Down() []string {
	var down []string
	for _, name := range t.watched {
		if !t.Up(name) {
			down = append(down, name)
		}
	}
	return down
}

// Fault reports whether the node must stay out of the election.
func (t *linkTracker) Fault() bool { return t.fault }

func (t *linkTracker) decide() faultChange {
	fault := len(t.Down()) > 0
	if fault == t.fault {
		return faultUnchanged
	}
	t.fault = fault
	if fault {
		return faultEntered
	}
	return faultLeft
}

// linkInbox carries reports from the watcher goroutine to the loop without
// ever blocking the watcher: reports queue under a lock, and a full
// listing supersedes everything queued before it.
type linkInbox struct {
	mu      sync.Mutex
	pending []linkBatch
	notify  chan struct{} // capacity 1: "something is pending"
}

type linkBatch struct {
	full  bool
	links []LinkState
}

func newLinkInbox() *linkInbox { return &linkInbox{notify: make(chan struct{}, 1)} }

func (b *linkInbox) put(full bool, links []LinkState) {
	b.mu.Lock()
	if full {
		b.pending = b.pending[:0]
	}
	b.pending = append(b.pending, linkBatch{full: full, links: slices.Clone(links)})
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

func (b *linkInbox) take() []linkBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.pending
	b.pending = nil
	return out
}

// onLinks takes the link watcher's reports in the loop.
func (a *Agent) onLinks(now time.Time, batches []linkBatch) {
	before := map[string]bool{}
	for _, name := range a.links.Watched() {
		before[name] = a.links.Up(name)
	}
	wasFault := a.links.Fault()
	for _, b := range batches {
		a.links.Observe(b.full, b.links)
	}
	for _, name := range a.links.Watched() {
		up := a.links.Up(name)
		if up == before[name] {
			continue
		}
		if up {
			a.log.Info("link up", "interface", name)
			// An administrative down flushes the IPv6 link-local source
			// the agent added; it must be back before the next advert.
			a.ensureLinkLocals(name)
		} else {
			a.log.Warn("link down", "interface", name)
		}
	}
	a.updateLinkMetrics()
	switch fault := a.links.Fault(); {
	case fault && !wasFault:
		a.enterFault(now)
	case !fault && wasFault:
		a.leaveFault(now)
	}
}

// enterFault takes the node out of the election for every group: the
// Active ones send a priority-0 advert where the link still carries it and
// drop their VIPs, and no group advertises or answers adverts until every
// interface is up again.
func (a *Agent) enterFault(now time.Time) {
	a.log.Warn("fault: leaving the VRRP election for every group until all interfaces are up",
		"interfaces_down", a.links.Down())
	if a.sg != nil {
		a.execute(a.sg.Step(now, -1, vrrp.Shutdown{}))
	}
	for _, m := range a.members {
		m.stopBursts()
	}
	a.met.fault.Set(1)
	a.setFaultGauges()
	a.followSyncState()
}

// leaveFault starts the sync group again: every group as Backup, which
// then takes over or preempts by the normal rules.
func (a *Agent) leaveFault(now time.Time) {
	a.log.Info("fault cleared: every interface is up; rejoining the VRRP election",
		"interfaces", a.links.Watched())
	a.met.fault.Set(0)
	if a.sg != nil {
		a.execute(a.sg.Step(now, -1, vrrp.Start{}))
	}
	a.followSyncState()
}

func (a *Agent) ensureLinkLocals(ifname string) {
	for key := range a.conns {
		if key.ifname != ifname || !key.ipv6 {
			continue
		}
		if err := a.net.EnsureLinkLocal(key.ifname, key.source); err != nil {
			a.log.Error("cannot restore the IPv6 link-local source", "interface", key.ifname, "source", key.source, "err", err)
		}
	}
}

func (a *Agent) setFaultGauges() {
	for _, m := range a.members {
		a.met.state.WithLabelValues(m.group.Name).Set(stateFault)
	}
}

// stateFault is mwgc_agent_state's value while the node is in Fault.
const stateFault = 3

func (a *Agent) updateLinkMetrics() {
	a.met.interfaceUp.Reset()
	for _, name := range a.links.Watched() {
		v := 0.0
		if a.links.Up(name) {
			v = 1
		}
		a.met.interfaceUp.WithLabelValues(name).Set(v)
	}
}
