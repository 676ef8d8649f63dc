package compiler

import (
	"fmt"
	"net/netip"

	"cuelang.org/go/cue"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/plan"
)

// distSegment is the segment where the director reaches the nodes: the
// one named, or the management segment.
func distSegment(cl *cluster) string {
	if d := cl.doc.Distribution; d.Segment != "" {
		return d.Segment
	}
	if cl.doc.Management != nil {
		return cl.doc.Management.Segment
	}
	return ""
}

// scans reports whether n takes a share of the distributed traffic.
func scans(cl *cluster, n *nodeInfo) bool {
	return n.doc.Priority == 0 || cl.doc.Distribution.DirectorsScan
}

// distAddr is n's first IPv4 address on its interface on segment seg.
func distAddr(n *nodeInfo, seg string) (netip.Addr, bool) {
	ifname, ok := n.ifaceBySegment[seg]
	if !ok {
		return netip.Addr{}, false
	}
	for _, a := range n.addrs[ifname] {
		if a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// distVIPSegment maps every IPv4 VIP of the cluster's groups to the
// group's segment.
func distVIPSegment(cl *cluster) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	if cl.doc.VRRP == nil {
		return out
	}
	for _, g := range cl.doc.VRRP.Groups {
		for _, text := range g.VIPs {
			if a, err := netip.ParseAddr(text); err == nil && a.Unmap().Is4() {
				out[a.Unmap()] = g.Segment
			}
		}
	}
	return out
}

func (c *checker) checkDistribution(cl *cluster) {
	d := cl.doc.Distribution
	dpath := func(rest ...any) []cue.Selector {
		return sel(append([]any{"clusters", cl.name, "distribution"}, rest...)...)
	}
	vipSeg := distVIPSegment(cl)
	first := ""
	for i, text := range d.VIPs {
		a, err := netip.ParseAddr(text)
		if err != nil {
			continue
		}
		seg, ok := vipSeg[a.Unmap()]
		switch {
		case !ok:
			c.add(SeverityError, "distribution-vip", cl.inst, dpath("vips", i),
				"list IPv4 VIPs of the cluster's vrrp groups: the Active director holds them and receives their traffic",
				"%s is not an IPv4 VIP of any vrrp group of cluster %s", a, cl.name)
		case first == "":
			first = seg
		case seg != first:
			c.add(SeverityError, "distribution-vip", cl.inst, dpath("vips", i),
				"distribute VIPs of one segment; traffic of one distribution arrives on one interface",
				"VIP %s is on segment %s, the first distributed VIP on %s", a, seg, first)
		}
	}
	seen := map[int]bool{}
	for i, p := range d.Ports {
		if seen[p] {
			c.add(SeverityError, "distribution-ports", cl.inst, dpath("ports", i),
				"list each port once", "port %d is listed twice", p)
		}
		seen[p] = true
	}
	if d.LoadWeighting {
		c.add(SeverityWarning, "distribution-load-weighting", cl.inst, dpath("loadWeighting"),
			"leave loadWeighting off unless nodes differ in capacity; a node's clients then stay where they are",
			"clients of cluster %s follow the nodes' reported load: a change of load level, and a failover to a director that heard other loads, moves clients and breaks their connections", cl.name)
	}
	segName := distSegment(cl)
	path := dpath("segment")
	if d.Segment == "" {
		path = sel("clusters", cl.name, "management", "segment")
	}
	if c.segmentRef(cl, segName, path) == nil {
		return
	}
	sharers := 0
	for _, n := range cl.nodes {
		if scans(cl, n) {
			sharers++
		}
		if _, ok := distAddr(n, segName); ok || (!scans(cl, n) && n.doc.Priority == 0) {
			continue
		}
		what := "takes a share of the traffic"
		if !scans(cl, n) {
			what = "is a director (it forwards the traffic there)"
		}
		c.add(SeverityError, "distribution-segment", cl.inst, nodePath(cl, n.name, "interfaces"),
			fmt.Sprintf("give the node an interface with an IPv4 address on segment %s, or set distribution.segment", segName),
			"node %s %s but has no IPv4 address on the distribution segment %s", n.name, what, segName)
	}
	if sharers == 0 {
		c.add(SeverityError, "distribution-no-nodes", cl.inst, dpath("directorsScan"),
			"add a scanning node (priority 0), or let the directors scan (directorsScan: true)",
			"no node of cluster %s takes a share of the distributed traffic", cl.name)
	}
}

// distributionPlan is n's part of the distribution.
func (r *repo) distributionPlan(cl *cluster, n *nodeInfo, director bool) *plan.Distribution {
	d := cl.doc.Distribution
	seg := distSegment(cl)
	out := &plan.Distribution{
		Mode: d.Mode, Ports: append([]int(nil), d.Ports...), ProxyPort: d.ProxyPort,
		Interface: n.ifaceBySegment[seg], Scans: scans(cl, n),
	}
	vipSeg := distVIPSegment(cl)
	for _, text := range d.VIPs {
		a := netip.MustParseAddr(text).Unmap()
		out.VIPs = append(out.VIPs, a)
		if director && out.VIPInterface == "" {
			out.VIPInterface = n.ifaceBySegment[vipSeg[a]]
		}
	}
	if !director {
		return out
	}
	out.Slots, out.Seed = d.Slots, distrib.Seed(cl.name)
	out.DirectorsScan, out.LoadWeighting = d.DirectorsScan, d.LoadWeighting
	for _, other := range cl.nodes {
		if !scans(cl, other) {
			continue
		}
		a, _ := distAddr(other, seg)
		out.Nodes = append(out.Nodes, plan.DistributionNode{Name: other.name, Address: a, Director: other.doc.Priority > 0})
	}
	return out
}
