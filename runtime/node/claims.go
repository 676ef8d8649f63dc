package node

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/impersonation"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// VIP claims (docs/security.md, "Someone claims a VIP"): another host
// sends an ARP packet or a Neighbor Advertisement that tells the link a VIP
// lives at its MAC — an ARP spoofer, a host with the VIP configured by
// mistake, a router answering by proxy ARP. Every client that believes it
// sends its traffic there. The executor watches every interface that
// carries VIPs (runtime/vrrpwatch claims) and reports such frames; the
// node, when it is the Active holding the VIP:
//
//   - answers with one announcement of its own (gratuitous ARP or
//     unsolicited NA) claimSettle after the claim, so clients point back
//     at once; at most one per counterEvery per VIP, whatever arrives, so
//     that a flood of claims cannot make it an amplifier;
//   - raises a vip-claim alarm naming the claiming MAC, unless a listed
//     peer's advert was accepted around the claim: then another director
//     acts or acted as Active (a handover, a healed split) and its own
//     announcements are VRRP's business, not an attack; or unless the MAC
//     is one a peer director's adverts came from in the last minute: a
//     director whose agent crashed or stopped and whose kernel still
//     answers for the VIP it left (logged as such).
//
// The wait before answering lets a legitimate new Active's advert, which
// it sends before its announcements but which arrives on another socket,
// be taken first: this node then is no longer Active and does not answer.
// Backups ignore claims: they cannot tell the Active's from a forger's.
// Claims at the group's own virtual MAC come from another Active of the
// same group and are ignored too.

const (
	claimSettle  = 20 * time.Millisecond
	counterEvery = 100 * time.Millisecond
)

// ClaimReason is the Reannounced reason of an answer to a claim.
const ClaimReason = "vip-claim"

// claimPart is the node's state for VIP claims.
type claimPart struct {
	watched map[string][]netip.Addr // the executor's watch, by interface
	byVIP   map[netip.Addr]*claims
}

// claims is what is pending for one address: a VIP of m's group, or,
// with m nil, one of the node's own addresses on iface. commitClaims drops
// every pending claim, so m is always a running member.
type claims struct {
	m     *member
	iface string
	// answerAt: an announcement is due (zero: none).
	answerAt, lastAnswer time.Time
	// judgeAt: the alarm decision for the claims since first is due.
	judgeAt, first time.Time
	count          uint64
	mac, kind      string
}

// ClaimFrame reports frames a watcher saw on Interface claiming VIP at
// MAC (Kind: "arp-request", "arp-reply", "neighbor-advertisement"): Count
// of them since the last report (the executor may coalesce a flood).
type ClaimFrame struct {
	Interface string
	VIP       netip.Addr
	MAC       net.HardwareAddr
	Kind      string
	Count     uint64
}

func (ClaimFrame) isEvent() {}

// WatchClaims asks the executor to watch exactly these interfaces for
// frames claiming these addresses (runtime/vrrpwatch ListenClaims) and
// report them as ClaimFrame events.
type WatchClaims struct {
	ByInterface map[string][]netip.Addr
}

func (WatchClaims) isEffect() {}

// commitClaims tells the executor which VIPs to watch on which interface
// when the plan changes them, and drops what was pending.
func (n *Node) commitClaims() {
	want := map[string][]netip.Addr{}
	for _, in := range n.plan.Interfaces {
		for _, p := range in.Addresses {
			want[in.Name] = append(want[in.Name], p.Addr())
		}
	}
	if n.plan.VRRP != nil {
		for _, g := range n.plan.VRRP.Groups {
			for _, v := range g.VIPs {
				want[g.Interface] = append(want[g.Interface], v.Addr())
			}
		}
	}
	for i := range want {
		slices.SortFunc(want[i], netip.Addr.Compare)
	}
	n.claims.byVIP = nil
	if maps.EqualFunc(want, n.claims.watched, slices.Equal) {
		return
	}
	n.claims.watched = want
	n.emit(WatchClaims{ByInterface: want})
}

// claimFrame takes a claim: pending answer and alarm decision while this
// node is the Active holding the VIP.
func (n *Node) claimFrame(now time.Time, ev ClaimFrame) {
	var m *member
	if !n.auth.alarms.IsOwn(ev.VIP) {
		if m = n.memberHolding(ev.Interface, ev.VIP); m == nil || isVirtualMAC(&m.group, ev.MAC) {
			return
		}
	}
	if n.claims.byVIP == nil {
		n.claims.byVIP = map[netip.Addr]*claims{}
	}
	c := n.claims.byVIP[ev.VIP]
	if c == nil {
		c = &claims{m: m, iface: ev.Interface}
		n.claims.byVIP[ev.VIP] = c
	}
	if c.answerAt.IsZero() {
		c.answerAt = now.Add(claimSettle)
		if next := c.lastAnswer.Add(counterEvery); next.After(c.answerAt) {
			c.answerAt = next
		}
	}
	if c.judgeAt.IsZero() {
		c.first, c.judgeAt = now, now.Add(claimSettle) // own addresses: at once
		if m != nil {
			c.judgeAt = now.Add(judgeAfter(&m.group))
		}
	}
	c.count += max(ev.Count, 1)
	c.mac, c.kind = ev.MAC.String(), ev.Kind
}

// judgeAfter is how long a claim waits for its alarm decision: one and a
// half advert intervals, so that a peer director acting as Active has sent
// an advert by then.
func judgeAfter(g *plan.Group) time.Duration {
	return claimSettle + g.AdvertInterval.D()*3/2
}

// memberHolding is the member whose group, on iface, has vip and holds it
// as Active; nil when none does (or the node is stopping).
func (n *Node) memberHolding(iface string, vip netip.Addr) *member {
	if n.stopping != nil {
		return nil
	}
	for _, m := range n.members {
		if m.group.Interface != iface || m.router.State() != vrrp.StateActive {
			continue
		}
		for _, p := range m.group.VIPs {
			if p.Addr() == vip && m.held[p] {
				return m
			}
		}
	}
	return nil
}

// isVirtualMAC reports whether mac is g's RFC 9568 virtual MAC.
func isVirtualMAC(g *plan.Group, mac net.HardwareAddr) bool {
	if g.VMACInterface == "" || len(mac) != 6 {
		return false
	}
	kind := byte(1)
	if g.Family == plan.FamilyIPv6 {
		kind = 2
	}
	return mac[0] == 0 && mac[1] == 0 && mac[2] == 0x5e && mac[3] == 0 && mac[4] == kind && int(mac[5]) == g.VRID
}

// claimsDeadline is the earliest answer or decision due.
func (n *Node) claimsDeadline() time.Time {
	var d time.Time
	for _, c := range n.claims.byVIP {
		for _, t := range []time.Time{c.answerAt, c.judgeAt} {
			if !t.IsZero() && (d.IsZero() || t.Before(d)) {
				d = t
			}
		}
	}
	return d
}

// claimsTick answers and judges what is due.
func (n *Node) claimsTick(now time.Time) {
	for vip, c := range n.claims.byVIP {
		if !c.answerAt.IsZero() && !now.Before(c.answerAt) {
			c.answerAt = time.Time{}
			switch m := c.m; {
			case m == nil && n.stopping == nil:
				c.lastAnswer = now
				n.emit(Announce{Interface: c.iface, VIP: vip})
			case m != nil && n.memberHolding(m.group.Interface, vip) == m:
				c.lastAnswer = now
				n.emit(Reannounced{Group: m.group.Name, Reason: ClaimReason},
					Announce{Group: m.group.Name, Interface: m.vipInterface(), VIP: vip})
			}
		}
		if !c.judgeAt.IsZero() && !now.Before(c.judgeAt) {
			n.judgeClaims(now, vip, c)
			c.judgeAt, c.count = time.Time{}, 0
		}
		if c.answerAt.IsZero() && c.judgeAt.IsZero() && now.Sub(c.lastAnswer) >= counterEvery {
			delete(n.claims.byVIP, vip)
		}
	}
	if len(n.claims.byVIP) == 0 {
		n.claims.byVIP = nil // the Active's tick skips this part again
	}
}

// judgeClaims raises the alarm for the claims since c.first, unless a
// listed peer's advert was accepted from one decision window before the
// first claim until now: a director acting as Active announces too.
func (n *Node) judgeClaims(now time.Time, vip netip.Addr, c *claims) {
	m := c.m
	if m == nil {
		n.emit(Impersonation{Kind: impersonation.OwnAddress.String(), Count: c.count})
		n.logClaim(n.auth.alarms.OwnClaim(now, c.iface, vip, c.mac, c.kind, c.count))
		return
	}
	since := c.first.Add(-judgeAfter(&m.group))
	for _, p := range m.router.Stats().Peers {
		if !p.LastSeen.Before(since) {
			return
		}
	}
	if peer, ok := n.auth.alarms.PeerWithMAC(now, c.mac); ok {
		// A director that holds the VIP without advertising: its agent
		// crashed or stopped and its kernel still answers for the VIP.
		// Answered all the same; worth a line, not an impersonation alarm.
		n.log.Warn("VIP also answered by another director, which does not advertise (its agent crashed or is stopped and left the VIP)",
			"group", m.group.Name, "vip", vip, "director", peer, "mac", c.mac, "count", c.count)
		return
	}
	n.emit(Impersonation{Kind: impersonation.VIPClaim.String(), Count: c.count})
	n.logClaim(n.auth.alarms.Claim(now, m.group.Name, vip, c.mac, c.kind, c.count))
}

// logClaim logs a claim's alarm event (Claim and OwnClaim raise or go on;
// clearing is Expire's, logged with the other alarms).
func (n *Node) logClaim(ev *impersonation.Event) {
	if ev == nil {
		return
	}
	if ev.Kind == impersonation.OwnAddress {
		args := []any{"interface", ev.Where, "address", ev.Addr, "mac", ev.MAC, "how", ev.Reason, "count", ev.Count, "since_last_line", ev.Unlogged}
		if ev.Raised {
			n.log.Error("this node's own address claimed by another host: its ARP or neighbour advertisements send the peers' traffic for it there; answered with our own announcements", args...)
			return
		}
		n.log.Warn("claims of this node's address continue", args...)
		return
	}
	args := []any{"group", ev.Where, "vip", ev.Addr, "mac", ev.MAC, "how", ev.Reason, "count", ev.Count, "since_last_line", ev.Unlogged}
	if ev.Raised {
		n.log.Error("VIP claimed by another host: its ARP or neighbour advertisements send clients to it; answered with our own announcements", args...)
		return
	}
	n.log.Warn("VIP claims continue", args...)
}
