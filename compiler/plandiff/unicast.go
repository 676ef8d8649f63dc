package plandiff

import (
	"fmt"
	"strings"

	"github.com/mwgc/mwgc/runtime/plan"
)

// Unicast VRRP and unicast discovery: what a change of transport does
// while the directors' plans land one by one.

func transportOf(u *plan.Unicast) string {
	if u == nil {
		return "multicast"
	}
	return fmt.Sprintf("unicast (minTTL %d)", u.MinTTL)
}

// transport reports a group's change of transport or of its unicast
// settings.
func (d *differ) transport(bg, ag *groupView) {
	b, a := transportOf(bg.Unicast), transportOf(ag.Unicast)
	if b == a {
		return
	}
	var e string
	switch {
	case bg.Unicast == nil:
		e = "each director sends its adverts to every peer by unicast once its plan lands, in place (no handover); " +
			"a director still on multicast hears them, and a unicast one still takes multicast adverts with TTL 255, " +
			"so the order does not matter where multicast still flows (roll out every director at once where it does not)"
	case ag.Unicast == nil:
		e = "each director sends to the multicast group once its plan lands, in place; every director hears both while the plans land, " +
			"where multicast flows: on a network without multicast the group splits until every director is back on unicast"
	default:
		e = fmt.Sprintf("unicast adverts addressed to a director count with a TTL of at least %d once its plan lands; "+
			"adverts to the group still need 255", ag.Unicast.MinTTL)
		if ag.Unicast.MinTTL < bg.Unicast.MinTTL {
			e += "; a lower minimum admits peers behind routers, where only authentication tells a peer from a forger"
		}
	}
	d.add(Change{Op: OpUpdate, Subject: "group " + ag.Name, Detail: "transport " + b + " → " + a, Wire: true, Effect: e})
}

func discoveryOf(m *plan.Management) string {
	if m.Discovery == "" {
		return plan.DiscoveryBroadcast
	}
	return m.Discovery
}

// discovery reports a change of the management protocol's discovery mode.
func (d *differ) discovery(bm, am *plan.Management) {
	b, a := discoveryOf(bm), discoveryOf(am)
	if b == a {
		return
	}
	e := "the Active sends each discovery to every node of its plan once its plan lands; answers do not change"
	if a == plan.DiscoveryBroadcast {
		e = "the Active sends each discovery to " + strings.TrimSpace(am.Broadcast.String()) + " once its plan lands; on a segment without broadcast no node hears it"
	}
	d.add(Change{Op: OpUpdate, Subject: "management", Detail: "discovery " + b + " → " + a, Wire: true, Effect: e})
}
