package node

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// member is one VRRP group of the plan. Its position in Node.members is
// its index in the sync group.
type member struct {
	group  plan.Group // as in the committed plan; the router's config derives from it
	router *vrrp.Router
	// held are the VIPs the executor was asked to add and did not report
	// failing (Failed), until asked to remove them.
	held map[netip.Prefix]bool
	// bursts are the announcement bursts in progress.
	bursts []burst
	// lastDropLog rate-limits drop log lines per reason.
	lastDropLog map[vrrp.DropReason]time.Time
	// leftover: VIPs an earlier run may have left are still in place
	// (failover.go: kept until a peer is seen serving them).
	leftover bool
	// lastAdvert is the SendAdvert emitted last (boxed once), emitted
	// again while the engine hands out the same advert (advertEffect).
	lastAdvert Effect
}

func newMember(g plan.Group, r *vrrp.Router) *member {
	return &member{group: g, router: r, held: map[netip.Prefix]bool{}, lastDropLog: map[vrrp.DropReason]time.Time{}}
}

func (m *member) socket() Socket { return socketOf(&m.group) }

func socketOf(g *plan.Group) Socket {
	return Socket{Interface: g.Interface, IPv6: g.Family == plan.FamilyIPv6, Source: g.Source}
}

// socketsOf lists the sockets the members use (to read, and to send from
// a virtual MAC), each once, sorted.
func socketsOf(members []*member) []Socket {
	var out []Socket
	for _, m := range members {
		for _, s := range []Socket{m.socket(), m.sendSocket()} {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, compareSockets)
	return out
}

func compareSockets(x, y Socket) int {
	switch {
	case x.Interface != y.Interface:
		if x.Interface < y.Interface {
			return -1
		}
		return 1
	case x.IPv6 != y.IPv6:
		if !x.IPv6 {
			return -1
		}
		return 1
	case x.SendOnly != y.SendOnly:
		if !x.SendOnly {
			return -1
		}
		return 1
	}
	return x.Source.Compare(y.Source)
}

// vrrpPacket hands a received advert to the group that runs its VRID.
func (n *Node) vrrpPacket(now time.Time, p VRRPPacket) {
	if n.stopping != nil {
		n.stopPacket(now, p)
		return
	}
	if n.sg == nil || n.links.Fault() || len(p.Data) < 2 {
		if len(p.Data) < 2 {
			n.emit(UnknownVRID{Socket: p.Socket})
		}
		return // in Fault the node is out of the election
	}
	for i, m := range n.members {
		if m.group.VRID == int(p.Data[1]) && m.socket() == p.Socket {
			n.emit(Received{Group: m.group.Name})
			accepted := m.router.Stats().AdvertsReceived
			n.execute(now, n.sg.Step(now, i, vrrp.Packet{Src: p.Src, Dst: p.Dst, TTL: p.TTL, Data: p.Data}))
			if m.leftover && m.router.Stats().AdvertsReceived > accepted && peerServes(p.Data) {
				n.clearLeftover(m)
			}
			return
		}
	}
	if !n.sharedVRID(p.Socket, int(p.Data[1])) {
		n.emit(UnknownVRID{Socket: p.Socket})
	}
}

// execute turns the sync group's actions into effects and follows the
// sync group's state for the management protocol.
func (n *Node) execute(now time.Time, actions []vrrp.MemberAction) {
	// Adverts first: when several members change state in one step, every
	// advert leaves before the slower netlink work starts (after the
	// macvlan of a virtual MAC that must carry them is up).
	n.vmacsUp(actions)
	for _, ma := range actions {
		if a, ok := ma.Action.(vrrp.SendAdvert); ok {
			n.emitAdvert(n.members[ma.Member], a.Data)
		}
	}
	activeMoved := false
	for _, ma := range actions {
		m := n.members[ma.Member]
		if t, ok := ma.Action.(vrrp.Transition); ok && (t.From == vrrp.StateActive || t.To == vrrp.StateActive) {
			activeMoved = true
		}
		n.executeOne(now, m, ma.Action)
	}
	if activeMoved {
		n.followSyncState(now)
	}
}

// executeMember carries out the actions of a router stepped on its own
// (a group leaving the plan).
func (n *Node) executeMember(now time.Time, m *member, actions []vrrp.Action) {
	for _, a := range actions {
		if s, ok := a.(vrrp.SendAdvert); ok {
			n.emitAdvert(m, s.Data)
			continue
		}
		n.executeOne(now, m, a)
	}
}

func (n *Node) executeOne(now time.Time, m *member, act vrrp.Action) {
	g := &m.group
	switch act := act.(type) {
	case vrrp.SendAdvert:
		// emitted first by the caller
	case vrrp.AddVIPs:
		m.leftover = false // the group's own from now on
		for _, v := range act.VIPs {
			m.held[v] = true
			n.emit(AddVIP{Group: g.Name, Interface: m.vipInterface(), VIP: v})
		}
		n.log.Info("VIPs added", "group", g.Name, "vips", act.VIPs)
	case vrrp.RemoveVIPs:
		if n.holdOnStop(m) {
			break // until the new Active is heard (failover.go)
		}
		for _, v := range act.VIPs {
			delete(m.held, v)
			n.emit(RemoveVIP{Group: g.Name, Interface: m.vipInterface(), VIP: v})
		}
		n.log.Info("VIPs removed", "group", g.Name, "vips", act.VIPs)
	case vrrp.Announce:
		n.startBurst(now, m, act.VIPs, act.Reason)
	case vrrp.Transition:
		if act.From == vrrp.StateActive {
			m.bursts = nil
			if n.stopping == nil {
				n.setVMAC(m, false) // after its last advert and its VIPs
			}
		}
		n.emit(Transition{Group: g.Name, From: act.From, To: act.To}, GroupState{Group: g.Name, State: act.To.String()})
		from, to, reason := n.faultMove.logged(act)
		n.log.Info("transition", "group", g.Name, "vrid", g.VRID, "family", g.Family,
			"from", from, "to", to, "reason", reason)
		n.notify(now, m, from, to, reason)
	case vrrp.Dropped:
		n.emit(Dropped{Group: g.Name, Reason: act.Reason.String()})
		// A rogue or misconfigured sender can flood: one line per group and
		// reason every 10 s is enough to find it; the metric counts the rest.
		if last, ok := m.lastDropLog[act.Reason]; !ok || now.Sub(last) > dropLogEvery {
			m.lastDropLog[act.Reason] = now
			n.log.Warn("advert dropped", "group", g.Name, "reason", act.Reason.String(), "src", act.Src, "err", act.Err)
		}
		n.authAction(now, m, act)
	case vrrp.Disagreed:
		n.authAction(now, m, act)
	case vrrp.Rejected:
		n.log.Error("engine refused an event", "group", g.Name, "err", act.Err)
	default:
		n.log.Warn("unknown engine action", "group", g.Name, "action", act)
	}
}

// dropLogEvery is the least time between two log lines for the same drop
// reason of a group.
const dropLogEvery = 10 * time.Second

// syncActive reports whether the node is Active (every started group is).
func (n *Node) syncActive() bool {
	return n.sg != nil && n.sg.State() == vrrp.StateActive
}

// followSyncState tells the metrics and the management protocol whether
// the node is Active now.
func (n *Node) followSyncState(now time.Time) {
	active := n.syncActive()
	n.emit(ActiveChanged{Active: active})
	if n.mgmt != nil {
		n.mgmt.setActive(n, now, active)
	}
	n.distribute(now, true)
}

// burst is one announcement burst of a group: Count packets per VIP,
// Interval apart, and once more after RepeatAfter.
type burst struct {
	vips     []netip.Prefix
	settings plan.Announce
	next     time.Time
	sent     int  // packets per VIP sent in this round
	repeat   bool // the second round
}

// startBurst starts an announcement burst: the plan's takeover burst, or
// for a re-announcement its shorter one (reannounceSettings).
func (n *Node) startBurst(now time.Time, m *member, vips []netip.Prefix, why vrrp.AnnounceReason) {
	if n.plan == nil || n.plan.VRRP == nil {
		return
	}
	settings := n.plan.VRRP.Announce
	if why != vrrp.AnnounceTakeover {
		settings = reannounceSettings(settings)
		n.emit(Reannounced{Group: m.group.Name, Reason: why.String()})
		n.log.Info("announcing the VIPs again", "group", m.group.Name, "reason", why.String())
	}
	if settings.Count == 0 {
		return
	}
	m.bursts = append(m.bursts, burst{vips: slices.Clone(vips), settings: settings, next: now})
	n.runBursts(now)
}

// runBursts sends every announcement that is due. A VIP the group no
// longer holds is skipped; a group that leaves Active drops its bursts.
func (n *Node) runBursts(now time.Time) {
	for _, m := range n.members {
		kept := m.bursts[:0]
		for _, b := range m.bursts {
			for !b.next.IsZero() && !now.Before(b.next) {
				for _, v := range b.vips {
					if m.held[v] {
						n.emit(Announce{Group: m.group.Name, Interface: m.vipInterface(), VIP: v.Addr()})
					}
				}
				b.advance()
			}
			if !b.next.IsZero() {
				kept = append(kept, b)
			}
		}
		m.bursts = kept
	}
}

// advance moves the burst past the packet just sent; next is zero when
// the burst is over.
func (b *burst) advance() {
	b.sent++
	switch {
	case b.sent < b.settings.Count:
		b.next = b.next.Add(b.settings.Interval.D())
	case !b.repeat && b.settings.RepeatAfter > 0:
		b.repeat, b.sent = true, 0
		b.next = b.next.Add(b.settings.RepeatAfter.D())
	default:
		b.next = time.Time{}
	}
}
