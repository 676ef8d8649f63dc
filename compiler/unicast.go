package compiler

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"cuelang.org/go/cue"

	"github.com/mwgc/mwgc/runtime/plan"
)

// Unicast VRRP groups and unicast discovery, for networks that carry no
// multicast or broadcast (docs/agent.md): the plan names every peer, so a
// unicast group sends to each of them and accepts only them. Without TTL
// 255 to rely on once adverts may cross a router, a unicast group enforces
// authentication or says in writing why not (docs/security.md).

const transportUnicast = "unicast"

func isUnicast(g groupDoc) bool { return g.Transport == transportUnicast }

// groupSource is the address director n sends group g's adverts from on
// ifname: the group's unicast sources entry for n, else its first IPv4
// address there or its linkLocal (vrrpSource).
func groupSource(g groupDoc, n *nodeInfo, ifname, family string) (netip.Addr, bool) {
	if isUnicast(g) && g.Unicast != nil {
		if text, ok := g.Unicast.Sources[n.name]; ok {
			if a, err := netip.ParseAddr(text); err == nil {
				return a.Unmap(), true
			}
		}
	}
	return vrrpSource(n, ifname, family)
}

// unicastPlan is the plan form of g's transport: nil for multicast.
func unicastPlan(g groupDoc) *plan.Unicast {
	if !isUnicast(g) {
		return nil
	}
	u := defaults.unicast
	if g.Unicast != nil {
		u = *g.Unicast
	}
	return &plan.Unicast{MinTTL: u.MinTTL}
}

// discoveryPlan is the plan form of the management discovery mode ("" for
// broadcast, so broadcast plans stay as they were).
func discoveryPlan(m *managementDoc) string {
	if m.Discovery == plan.DiscoveryUnicast {
		return plan.DiscoveryUnicast
	}
	return ""
}

// checkUnicast runs the unicast rules over every group of cl.
func (c *checker) checkUnicast(cl *cluster) {
	v := cl.doc.VRRP
	for _, gname := range sortedKeys(v.Groups) {
		g := v.Groups[gname]
		gpath := func(rest ...any) []cue.Selector {
			return sel(append([]any{"clusters", cl.name, "vrrp", "groups", gname}, rest...)...)
		}
		if !isUnicast(g) {
			if g.Unicast != nil {
				c.add(SeverityError, "vrrp-unicast-unused", cl.inst, gpath("unicast"),
					`add transport: "unicast" to the group, or remove its unicast settings`,
					"group %s has unicast settings but sends by multicast (transport %q)", gname, g.Transport)
			}
			continue
		}
		c.checkUnicastAuth(cl, v, g, gname, gpath)
		c.checkUnicastSources(cl, g, gname, gpath)
		c.checkUnicastPeers(cl, g, gname, gpath)
	}
}

// checkUnicastAuth: a unicast group enforces authentication, or gives a
// reason in unicast.waiver.
func (c *checker) checkUnicastAuth(cl *cluster, v *vrrpDoc, g groupDoc, gname string, gpath func(...any) []cue.Selector) {
	a, _ := groupAuth(v, g, cl, gname)
	if a != nil && authMode(a) == plan.AuthEnforce {
		return
	}
	state := "without authentication"
	if a != nil {
		state = fmt.Sprintf("with authentication in mode %s", authMode(a))
	}
	if g.Unicast == nil || g.Unicast.Waiver == nil {
		c.add(SeverityError, "vrrp-unicast-unauthenticated", cl.inst, gpath("transport"),
			`enforce authentication (authentication: {keys: [{id: 1, file: "/etc/mwgc/vrrp-1.key"}], activeKey: 1}), or write why not in unicast: waiver: reason: "..."`,
			"unicast group %s runs %s: unicast adverts can come from anywhere a route leads, and once they may cross a router only authentication tells a peer from a forger", gname, state)
		return
	}
	reason := strings.TrimSpace(g.Unicast.Waiver.Reason)
	if reason == "" {
		c.add(SeverityError, "waiver-reason", cl.inst, gpath("unicast", "waiver", "reason"),
			"write why this unicast group may run without enforced authentication, for the next reader",
			"the unicast waiver of group %s has no reason", gname)
		return
	}
	c.add(SeverityNote, "vrrp-unicast-waived", cl.inst, gpath("unicast", "waiver"),
		"", "unicast group %s runs %s: %s", gname, state, reason)
}

// checkUnicastSources: a source override names a director of the cluster
// and one of its addresses of the group's family on the group's segment.
func (c *checker) checkUnicastSources(cl *cluster, g groupDoc, gname string, gpath func(...any) []cue.Selector) {
	if g.Unicast == nil {
		return
	}
	family := groupFamily(g)
	for _, name := range sortedKeys(g.Unicast.Sources) {
		path := gpath("unicast", "sources", name)
		a, err := netip.ParseAddr(g.Unicast.Sources[name])
		if err != nil {
			continue // the schema reported it
		}
		a = a.Unmap()
		i := slices.IndexFunc(cl.nodes, func(n *nodeInfo) bool { return n.name == name })
		if i < 0 || cl.nodes[i].doc.Priority == 0 {
			c.add(SeverityError, "vrrp-unicast-source", cl.inst, path,
				"name a director of the cluster (a node with a priority above 0)",
				"unicast source for %s: %s is not a director of cluster %s", gname, name, cl.name)
			continue
		}
		n := cl.nodes[i]
		ifname, on := n.ifaceBySegment[g.Segment]
		switch {
		case familyOf(a) != family:
			c.add(SeverityError, "vrrp-unicast-source", cl.inst, path,
				fmt.Sprintf("use an %s address of %s on segment %s", family, name, g.Segment),
				"unicast source %s of %s for %s group %s is not an %s address", a, name, family, gname, family)
		case !on:
			// director-not-on-segment reports it.
		case !slices.Contains(n.addrs[ifname], a) && n.linkLocal[ifname] != a:
			c.add(SeverityError, "vrrp-unicast-source", cl.inst, path,
				fmt.Sprintf("use one of the addresses of %s.%s, or add it there", name, ifname),
				"unicast source %s is not an address of %s's interface %s on segment %s", a, name, ifname, g.Segment)
		}
	}
}

// checkUnicastPeers: every external peer of a unicast group is a
// destination, so it needs a unicast address of the group's family (IPv6:
// global or link-local, whichever the peer sends from).
func (c *checker) checkUnicastPeers(cl *cluster, g groupDoc, gname string, gpath func(...any) []cue.Selector) {
	family := groupFamily(g)
	for _, pname := range sortedKeys(g.ExternalPeers) {
		a, err := netip.ParseAddr(g.ExternalPeers[pname].Address)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if familyOf(a) != family || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
			c.add(SeverityError, "vrrp-unicast-peer-address", cl.inst, gpath("externalPeers", pname, "address"),
				fmt.Sprintf("write the %s address the peer sends from and receives on (its unicast_src_ip)", family),
				"external peer %s of unicast %s group %s needs a unicast %s address to send to, not %s", pname, family, gname, family, a)
		}
	}
}
