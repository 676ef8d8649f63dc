package node

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// linkTracker decides when the node must leave the VRRP election (Fault):
// while any interface one of its groups runs on is down or missing. A node
// that keeps advertising on its remaining links while one link is dead
// would win those segments while the peer wins the dead one's, and the
// sync groups of the two nodes would pull each other back and forth every
// Active_Down_Interval.
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

func newLinkTracker() linkTracker {
	return linkTracker{byIndex: map[int]LinkState{}}
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

// Exists reports whether the host has an interface of that name; without a
// listing it cannot tell, and says yes.
func (t *linkTracker) Exists(name string) bool {
	if !t.listed {
		return true
	}
	for _, l := range t.byIndex {
		if l.Name == name {
			return true
		}
	}
	return false
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

// states is the up/down state of every watched interface.
func (t *linkTracker) states() map[string]bool {
	out := make(map[string]bool, len(t.watched))
	for _, name := range t.watched {
		out[name] = t.Up(name)
	}
	return out
}

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

// linkReport takes the link watcher's news.
func (n *Node) linkReport(now time.Time, r LinkReport) {
	before := n.links.states()
	change := n.links.Observe(r.Full, r.Links)
	after := n.links.states()
	for _, name := range n.links.Watched() {
		if after[name] == before[name] {
			continue
		}
		if after[name] {
			n.log.Info("link up", "interface", name)
			// An administrative down flushes the IPv6 link-local source
			// the agent added; it must be back before the next advert.
			for _, s := range socketsOf(n.members) {
				if s.Interface == name && s.keepsLinkLocal() {
					n.emit(EnsureLinkLocal{Interface: name, Addr: s.Source})
				}
			}
		} else {
			n.log.Warn("link down", "interface", name)
		}
	}
	if !maps.Equal(before, after) {
		n.emit(InterfacesChanged{Up: after})
	}
	n.applyFault(now, change)
}

// faultMove says why groups enter or leave Fault, for their transitions'
// log lines: underneath, the engine goes to Initialize (Shutdown) and
// starts from there again (Start).
type faultMove struct {
	entering bool
	reason   string
}

// logged returns the states and reason a transition is logged with.
func (f *faultMove) logged(t vrrp.Transition) (from, to, reason string) {
	from, to, reason = t.From.String(), t.To.String(), t.Reason
	switch {
	case f == nil:
	case f.entering && t.To == vrrp.StateInitialize:
		to, reason = StateFault, f.reason
	case !f.entering && t.From == vrrp.StateInitialize:
		from, reason = StateFault, f.reason
	}
	return from, to, reason
}

// applyFault carries out a change of the Fault decision.
func (n *Node) applyFault(now time.Time, change faultChange) {
	switch change {
	case faultEntered:
		n.enterFault(now)
	case faultLeft:
		n.leaveFault(now)
	}
}

// enterFault takes the node out of the election for every group: the
// Active ones send a priority-0 advert where the link still carries it and
// drop their VIPs, and no group advertises or answers adverts until every
// interface is up again.
func (n *Node) enterFault(now time.Time) {
	down := n.links.Down()
	n.log.Warn("fault: leaving the VRRP election for every group until all interfaces are up",
		"interfaces_down", down)
	if n.sg != nil {
		word := "interface"
		if len(down) > 1 {
			word = "interfaces"
		}
		n.faultMove = &faultMove{entering: true, reason: word + " " + strings.Join(down, ", ") + " down"}
		n.execute(now, n.sg.Step(now, -1, vrrp.Shutdown{}))
		n.faultMove = nil
	}
	n.emit(FaultChanged{Fault: true})
	for _, m := range n.members {
		m.bursts = nil
		n.clearLeftover(m)
		n.emit(GroupState{Group: m.group.Name, State: StateFault})
	}
	n.followSyncState(now)
}

// leaveFault starts the sync group again: every group as Backup, which
// then takes over or preempts by the normal rules.
func (n *Node) leaveFault(now time.Time) {
	n.log.Info("fault cleared: every interface is up; rejoining the VRRP election",
		"interfaces", n.links.Watched())
	n.emit(FaultChanged{Fault: false})
	if n.sg != nil {
		n.faultMove = &faultMove{reason: "every interface up"}
		n.execute(now, n.sg.Step(now, -1, vrrp.Start{}))
		n.faultMove = nil
	}
	n.followSyncState(now)
}
