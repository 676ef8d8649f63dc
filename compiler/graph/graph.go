// Package graph draws a compiled repository's topology — segments
// (protected, waived or not), nodes, VRRP groups with their VIPs, the
// management protocol — as Mermaid (rendered by GitHub and GitLab in
// pull requests and issues) and as Graphviz DOT.
package graph

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/plan"
)

// kind is what a box stands for; it decides its shape and colour.
type kind int

const (
	kindSegment kind = iota
	kindDirector
	kindScanner
	kindGroup
	kindManagement
	kindExternal
)

// protection classes of a segment.
const (
	classProtected   = "protected"
	classWaived      = "waived"
	classUnprotected = "unprotected"
)

type box struct {
	id    string
	kind  kind
	lines []string
	class string // segments: protection; directors: "active" for the expected Active
}

type edgeStyle int

const (
	edgeLink   edgeStyle = iota // an interface on a segment
	edgeArrow                   // a director (or peer) in a group, with its priority
	edgeDotted                  // a group or the management protocol on its segment
)

type edge struct {
	from, to string
	label    string
	style    edgeStyle
}

type clusterBox struct {
	id, label string
	boxes     []box
}

// topology is what both renderers draw; ids are stable for equal input.
type topology struct {
	segments []box
	clusters []clusterBox
	edges    []edge
}

// build lays out a snapshot: segments outside the clusters (clusters may
// share one), everything of a cluster inside its box.
func build(s *compiler.Snapshot) *topology {
	t := &topology{}
	segID := map[string]string{}
	for i, seg := range s.Segments {
		id := fmt.Sprintf("s%d", i+1)
		segID[seg.Name] = id
		t.segments = append(t.segments, segmentBox(id, seg))
	}
	for ci, plans := range byCluster(s.Plans) {
		cid := fmt.Sprintf("c%d", ci+1)
		cb := clusterBox{id: cid, label: fmt.Sprintf("cluster %s · %s", plans[0].Cluster, plans[0].Plan.Mode)}
		t.cluster(&cb, plans, segID)
		t.clusters = append(t.clusters, cb)
	}
	return t
}

func segmentBox(id string, seg compiler.Segment) box {
	b := box{id: id, kind: kindSegment, lines: []string{"segment " + seg.Name}}
	var cidrs []string
	for _, p := range seg.CIDRs {
		cidrs = append(cidrs, p.String())
	}
	b.lines = append(b.lines, strings.Join(cidrs, ", "))
	switch {
	case seg.Protected:
		b.class = classProtected
		b.lines = append(b.lines, "protected")
	case seg.Waiver != "":
		b.class = classWaived
		b.lines = append(b.lines, "not protected, waived:", shorten(seg.Waiver, 48))
	default:
		b.class = classUnprotected
		b.lines = append(b.lines, "not protected")
	}
	return b
}

// shorten cuts text at a word boundary to at most n bytes, with an ellipsis.
func shorten(text string, n int) string {
	if len(text) <= n {
		return text
	}
	cut := strings.LastIndex(text[:n], " ")
	if cut <= 0 {
		cut = n
	}
	return strings.TrimRight(text[:cut], " ,;:") + "…"
}

func byCluster(plans []compiler.NodePlan) [][]compiler.NodePlan {
	var out [][]compiler.NodePlan
	for _, np := range plans {
		if n := len(out); n > 0 && out[n-1][0].Cluster == np.Cluster {
			out[n-1] = append(out[n-1], np)
			continue
		}
		out = append(out, []compiler.NodePlan{np})
	}
	return out
}

// cluster adds the boxes of one cluster and their edges.
func (t *topology) cluster(cb *clusterBox, plans []compiler.NodePlan, segID map[string]string) {
	best := bestDirector(plans)
	groupID := map[string]string{}
	var groups []plan.Group // in order, from the first director that has them
	var mgmt *plan.Management
	for ni, np := range plans {
		p := np.Plan
		id := fmt.Sprintf("%sn%d", cb.id, ni+1)
		b := box{id: id, kind: kindScanner, lines: []string{p.Node}}
		if p.VRRP != nil {
			b.kind = kindDirector
			b.lines = append(b.lines, fmt.Sprintf("director, priority %d", p.VRRP.Priority))
			if p.Node == best {
				b.class = "active"
				b.lines = append(b.lines, "expected Active")
			}
		} else if p.Management != nil {
			b.lines = append(b.lines, "scanning only")
		} else {
			b.lines = append(b.lines, "runs neither protocol")
		}
		cb.boxes = append(cb.boxes, b)
		for _, in := range p.Interfaces {
			t.edges = append(t.edges, edge{from: id, to: segID[in.Segment], label: ifaceLabel(in), style: edgeLink})
		}
		if p.VRRP != nil {
			for _, g := range p.VRRP.Groups {
				if groupID[g.Name] == "" {
					groupID[g.Name] = fmt.Sprintf("%sg%d", cb.id, len(groupID)+1)
					groups = append(groups, g)
				}
				t.edges = append(t.edges, edge{from: id, to: groupID[g.Name], label: fmt.Sprint(p.VRRP.Priority), style: edgeArrow})
			}
		}
		if p.Management != nil && mgmt == nil {
			m := *p.Management
			m.Interface = segmentOf(p, p.Management.Interface)
			mgmt = &m
		}
	}
	externalID := map[string]string{}
	for _, g := range groups {
		gid := groupID[g.Name]
		cb.boxes = append(cb.boxes, box{id: gid, kind: kindGroup, lines: groupLines(g)})
		t.edges = append(t.edges, edge{from: gid, to: segID[segmentOfGroup(plans, g)], label: fmt.Sprintf("VRID %d", g.VRID), style: edgeDotted})
		for _, peer := range g.Peers {
			if !peer.External {
				continue
			}
			xid := externalID[peer.Name]
			if xid == "" {
				xid = fmt.Sprintf("%sx%d", cb.id, len(externalID)+1)
				externalID[peer.Name] = xid
				x := box{id: xid, kind: kindExternal,
					lines: []string{peer.Name, fmt.Sprintf("external peer, priority %d", peer.Priority), peer.Address.String()}}
				if peer.Name == best {
					x.class = "active"
					x.lines = append(x.lines, "expected Active")
				}
				cb.boxes = append(cb.boxes, x)
			}
			t.edges = append(t.edges, edge{from: xid, to: gid, label: fmt.Sprint(peer.Priority), style: edgeArrow})
		}
	}
	if mgmt != nil {
		mid := cb.id + "m"
		cb.boxes = append(cb.boxes, box{id: mid, kind: kindManagement, lines: []string{
			"management protocol",
			fmt.Sprintf("udp %d, every %s", mgmt.Port, dur(mgmt.DiscoveryInterval.D())),
			fmt.Sprintf("down after %d missed", mgmt.DeadAfter),
			authText(mgmt),
		}})
		t.edges = append(t.edges, edge{from: mid, to: segID[mgmt.Interface], label: "broadcast " + mgmt.Broadcast.String(), style: edgeDotted})
	}
}

// bestDirector names the router with the best priority, an external peer
// included: the Active when every router runs.
func bestDirector(plans []compiler.NodePlan) string {
	best, prio := "", 0
	for _, np := range plans {
		v := np.Plan.VRRP
		if v == nil {
			continue
		}
		if v.Priority > prio {
			best, prio = np.Node, v.Priority
		}
		for _, g := range v.Groups {
			for _, peer := range g.Peers {
				if peer.External && peer.Priority > prio {
					best, prio = peer.Name, peer.Priority
				}
			}
		}
	}
	return best
}

func ifaceLabel(in plan.Interface) string {
	parts := []string{in.Name}
	for _, a := range in.Addresses {
		parts = append(parts, a.Addr().String())
	}
	return strings.Join(parts, " ")
}

func segmentOf(p *plan.Plan, ifname string) string {
	for _, in := range p.Interfaces {
		if in.Name == ifname {
			return in.Segment
		}
	}
	return ""
}

func segmentOfGroup(plans []compiler.NodePlan, g plan.Group) string {
	for _, np := range plans {
		if v := np.Plan.VRRP; v != nil && slices.ContainsFunc(v.Groups, func(x plan.Group) bool { return x.Name == g.Name }) {
			for _, x := range v.Groups {
				if x.Name == g.Name {
					return segmentOf(np.Plan, x.Interface)
				}
			}
		}
	}
	return ""
}

func groupLines(g plan.Group) []string {
	lines := []string{"VRRP " + g.Name, fmt.Sprintf("VRID %d, %s, every %s", g.VRID, g.Family, dur(g.AdvertInterval.D()))}
	var vips []string
	for _, v := range g.VIPs {
		vips = append(vips, v.Addr().String())
	}
	noun := "VIP "
	if len(vips) > 1 {
		noun = "VIPs "
	}
	lines = append(lines, noun+strings.Join(vips, ", "))
	if !g.Preempt {
		lines = append(lines, "preempt off")
	}
	return lines
}

func authText(m *plan.Management) string {
	if m.Unauthenticated {
		return "unauthenticated"
	}
	return "HMAC, key " + m.KeyFile
}

func dur(d time.Duration) string { return d.String() }
