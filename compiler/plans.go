package compiler

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// ErrInvalid is returned by Plans when the repository has error findings.
var ErrInvalid = errors.New("the repository has errors; run mwgc validate")

// NodePlan is the plan of one node.
type NodePlan struct {
	Cluster, Node string
	Plan          *plan.Plan
}

// Plans builds one plan per node of every cluster, sorted by cluster and
// node. It refuses when Load reported errors.
func (r *Result) Plans() ([]NodePlan, error) {
	if HasErrors(r.Findings) {
		return nil, ErrInvalid
	}
	var out []NodePlan
	for _, cl := range r.repo.clusters {
		for _, n := range cl.nodes {
			out = append(out, NodePlan{Cluster: cl.name, Node: n.name, Plan: r.repo.nodePlan(cl, n)})
		}
	}
	if err := addRollout(out); err != nil {
		return nil, err
	}
	return out, nil
}

func dur(text string) plan.Duration {
	d, _ := time.ParseDuration(text) // checked by interval-range
	return plan.Duration(d)
}

func (r *repo) nodePlan(cl *cluster, n *nodeInfo) *plan.Plan {
	p := &plan.Plan{APIVersion: plan.APIVersion, Cluster: cl.name, Node: n.name, Mode: cl.doc.Mode, Interfaces: []plan.Interface{}}
	director := n.doc.Priority > 0 && usesProtocols(cl.doc.Mode) && cl.doc.VRRP != nil
	// Link-locals only where this node runs an IPv6 group.
	v6Segments := map[string]bool{}
	if director {
		for _, g := range cl.doc.VRRP.Groups {
			if groupFamily(g) == plan.FamilyIPv6 {
				v6Segments[g.Segment] = true
			}
		}
	}
	for _, ifname := range sortedKeys(n.doc.Interfaces) {
		in := n.doc.Interfaces[ifname]
		seg := r.segments[in.Segment]
		pi := plan.Interface{Name: ifname, Segment: in.Segment, Addresses: []netip.Prefix{}}
		for _, a := range n.addrs[ifname] {
			pi.Addresses = append(pi.Addresses, netip.PrefixFrom(a, seg.prefixFor(a).Bits()))
		}
		if v6Segments[in.Segment] {
			pi.LinkLocal = n.linkLocal[ifname]
		}
		p.Interfaces = append(p.Interfaces, pi)
	}
	if director {
		p.VRRP = r.vrrpPlan(cl, n)
	}
	if m := cl.doc.Management; m != nil && usesProtocols(cl.doc.Mode) {
		p.Management = r.managementPlan(cl, n, m)
	}
	if cl.doc.Distribution != nil && p.Management != nil {
		// Answers must carry the MAC and proxy check the director needs.
		p.Management.Version = 2
		if director || scans(cl, n) {
			p.Distribution = r.distributionPlan(cl, n, director)
		}
	}
	return p
}

func (r *repo) vrrpPlan(cl *cluster, n *nodeInfo) *plan.VRRP {
	v := cl.doc.VRRP
	out := &plan.VRRP{
		Priority:     n.doc.Priority,
		Announce:     plan.Announce{Count: v.Announce.Count, Interval: dur(v.Announce.Interval), RepeatAfter: dur(v.Announce.RepeatAfter)},
		RolloutGrace: dur(v.RolloutGrace),
		Notify:       notifyPlan(v.Notify),
	}
	// Written only when it differs from the agent's default, so that plans
	// of clusters that keep the defaults stay readable by older agents.
	ra := v.Announce.Reannounce
	if re := (plan.Reannounce{Count: ra.Count, Holdoff: dur(ra.Holdoff), Refresh: dur(ra.Refresh)}); re != plan.DefaultReannounce {
		out.Announce.Reannounce = &re
	}
	vmacNames := map[string]bool{}
	for ifname := range n.doc.Interfaces {
		vmacNames[ifname] = true
	}
	for _, gname := range sortedKeys(v.Groups) {
		g := v.Groups[gname]
		seg := r.segments[g.Segment]
		family := groupFamily(g)
		ifname := n.ifaceBySegment[g.Segment]
		src, _ := groupSource(g, n, ifname, family)
		pg := plan.Group{
			Name: gname, VRID: g.VRID, Interface: ifname, Family: family, Version: g.Version,
			AdvertInterval: dur(g.AdvertInterval), Preempt: g.Preempt, PreemptDelay: dur(g.PreemptDelay),
			AcceptMode: g.AcceptMode, Source: src, VIPs: []netip.Prefix{}, Peers: []plan.Peer{},
		}
		if family == plan.FamilyIPv4 {
			pg.Checksum = g.Checksum
		}
		if g.VirtualMAC {
			pg.VMACInterface = vmacInterfaceName(family, g.VRID, vmacNames)
		}
		a, _ := groupAuth(v, g, cl, gname)
		pg.Auth = authPlan(a)
		pg.Unicast = unicastPlan(g)
		for _, text := range g.VIPs {
			a := netip.MustParseAddr(text).Unmap()
			pg.VIPs = append(pg.VIPs, netip.PrefixFrom(a, seg.prefixFor(a).Bits()))
		}
		for _, other := range cl.nodes {
			if other == n || other.doc.Priority == 0 {
				continue
			}
			a, _ := groupSource(g, other, other.ifaceBySegment[g.Segment], family)
			pg.Peers = append(pg.Peers, plan.Peer{Name: other.name, Address: a, Priority: other.doc.Priority, Auth: pg.Auth != nil})
		}
		for _, pname := range sortedKeys(g.ExternalPeers) {
			ep := g.ExternalPeers[pname]
			pg.Peers = append(pg.Peers, plan.Peer{Name: pname, Address: netip.MustParseAddr(ep.Address).Unmap(), Priority: ep.Priority, External: true,
				Auth: pg.Auth != nil && ep.Authentication})
		}
		out.Groups = append(out.Groups, pg)
	}
	return out
}

func (r *repo) managementPlan(cl *cluster, n *nodeInfo, m *managementDoc) *plan.Management {
	seg := r.segments[m.Segment]
	out := &plan.Management{
		Interface:         n.ifaceBySegment[m.Segment],
		Address:           netip.MustParseAddr(n.doc.ManagementIP).Unmap(),
		Broadcast:         broadcast(seg.v4),
		Discovery:         discoveryPlan(m),
		Port:              m.Port,
		DiscoveryInterval: dur(m.DiscoveryInterval),
		DeadAfter:         m.DeadAfter,
		KeyFile:           m.KeyFile,
		Unauthenticated:   m.Unauthenticated,
		TableFile:         m.TableFile,
	}
	if seg.v4.Bits() >= 31 {
		out.Broadcast = netip.Addr{} // none there: discovery is unicast (management-no-broadcast)
	}
	for _, other := range cl.nodes {
		out.Members = append(out.Members, plan.Member{
			Name: other.name, Address: netip.MustParseAddr(other.doc.ManagementIP).Unmap(), Director: other.doc.Priority > 0,
		})
	}
	return out
}

// broadcast returns the directed broadcast address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// vmacInterfaceName names the macvlan of a virtual-MAC group:
// vmac4-<vrid> or vmac6-<vrid>, with -2, -3 ... when a node already has an
// interface of that name (the same VRID and family on two segments).
func vmacInterfaceName(family string, vrid int, taken map[string]bool) string {
	fam := 4
	if family == plan.FamilyIPv6 {
		fam = 6
	}
	base := fmt.Sprintf("vmac%d-%d", fam, vrid)
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	taken[name] = true
	return name
}
