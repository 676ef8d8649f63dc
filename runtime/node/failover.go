package node

import (
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Failover as clients see it: the virtual MAC of a group, the shape of
// re-announcements, VIPs a crash left behind, and the graceful stop that
// keeps the VIPs until the new Active is heard.

// vipInterface is where a group's VIPs live and are announced: its
// virtual-MAC macvlan, or its interface.
func (m *member) vipInterface() string {
	if m.group.VMACInterface != "" {
		return m.group.VMACInterface
	}
	return m.group.Interface
}

// sendSocket is the socket a group's adverts leave by: the send-only
// socket on its macvlan (from the virtual MAC), or the socket it reads.
func (m *member) sendSocket() Socket { return sendSocketOf(&m.group) }

func sendSocketOf(g *plan.Group) Socket {
	if g.VMACInterface == "" {
		return socketOf(g)
	}
	return Socket{Interface: g.VMACInterface, IPv6: g.Family == plan.FamilyIPv6, Source: g.Source, SendOnly: true}
}

// setVMAC brings a virtual-MAC group's macvlan up or down.
func (n *Node) setVMAC(m *member, active bool) {
	if m.group.VMACInterface == "" {
		return
	}
	e := SetVMAC{Group: m.group.Name, Name: m.group.VMACInterface, Active: active}
	if m.group.Family == plan.FamilyIPv6 {
		e.LinkLocal = m.group.Source
	}
	n.emit(e)
}

// vmacsUp brings up the macvlans of the groups that become Active in this
// step, before any of their adverts.
func (n *Node) vmacsUp(actions []vrrp.MemberAction) {
	for _, ma := range actions {
		if t, ok := ma.Action.(vrrp.Transition); ok && t.To == vrrp.StateActive {
			n.setVMAC(n.members[ma.Member], true)
		}
	}
}

// reannounceSettings is the burst of a re-announcement: the plan's
// reannounce count (its default when the plan has none), the takeover
// burst's interval, no second round.
func reannounceSettings(a plan.Announce) plan.Announce {
	ra := plan.DefaultReannounce
	if a.Reannounce != nil {
		ra = *a.Reannounce
	}
	return plan.Announce{Count: ra.Count, Interval: a.Interval}
}

// ---- VIPs an earlier run left behind.
//
// After kill -9 of an Active its VIPs stay on the interface and its kernel
// keeps answering clients until a Backup takes over. An agent restarted
// within Active_Down_Interval that removed them at once would cut those
// clients off until then. So the first plan's groups keep them
// (leftover) until someone else is seen serving them: an accepted advert
// of a peer with a priority above 0. Becoming Active makes them the
// group's own; Fault, a removal of the group and a stop take them away.

// clearLeftover removes what an earlier run may have left for m.
func (n *Node) clearLeftover(m *member) {
	if !m.leftover {
		return
	}
	m.leftover = false
	for _, v := range m.group.VIPs {
		if !m.held[v] {
			n.emit(RemoveVIP{Group: m.group.Name, Interface: m.vipInterface(), VIP: v})
		}
	}
	n.setVMAC(m, false)
	n.log.Info("VIPs an earlier run may have left removed", "group", m.group.Name)
}

// peerServes reports whether an accepted advert came from a peer that is
// (or wants to be) Active: its priority is above 0.
func peerServes(data []byte) bool { return len(data) > 2 && data[2] > 0 }

// ---- Graceful stop: the VIPs go when the new Active is heard.
//
// A stop sends priority 0 at once, so a Backup takes over after its
// Skew_Time; the VIPs stay until its first advert arrives (or two advert
// intervals pass), so clients are served the whole time: make before
// break. Removing them first, as RFC 9568 implementations do, cuts clients
// off for Skew_Time.

type stopping struct {
	until   time.Time
	holding []*member // Active groups whose VIPs wait for the new Active
}

// holdOnStop reports whether a group's VIPs wait (a stop is under way),
// recording the group.
func (n *Node) holdOnStop(m *member) bool {
	if n.stopping == nil {
		return false
	}
	if !slices.Contains(n.stopping.holding, m) {
		n.stopping.holding = append(n.stopping.holding, m)
	}
	return true
}

// stopWait is how long a stop waits for the new Active: two of the
// longest advert interval (a Backup takes over within one Skew_Time,
// less than one interval, and advertises at once).
func stopWait(members []*member) time.Duration {
	var d time.Duration
	for _, m := range members {
		d = max(d, 2*m.group.AdvertInterval.D())
	}
	return d
}

// stopPacket takes an advert while stopping: a peer's advert with a
// priority above 0 releases the VIPs of the group it is for.
func (n *Node) stopPacket(now time.Time, p VRRPPacket) {
	if len(p.Data) < 3 || p.Data[2] == 0 {
		return
	}
	for _, m := range slices.Clone(n.stopping.holding) { // release changes the list
		if m.socket() == p.Socket && m.group.VRID == int(p.Data[1]) &&
			slices.ContainsFunc(m.group.Peers, func(peer plan.Peer) bool { return peer.Address == p.Src.WithZone("") }) {
			n.release(m, "the new Active is heard")
		}
	}
	if len(n.stopping.holding) == 0 {
		n.finishStop(now)
	}
}

// release removes the VIPs a stopping group held.
func (n *Node) release(m *member, why string) {
	n.stopping.holding = slices.DeleteFunc(n.stopping.holding, func(x *member) bool { return x == m })
	for _, v := range m.heldList() {
		n.emit(RemoveVIP{Group: m.group.Name, Interface: m.vipInterface(), VIP: v})
	}
	clear(m.held)
	n.setVMAC(m, false)
	n.log.Info("VIPs released", "group", m.group.Name, "why", why)
}
