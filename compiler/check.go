package compiler

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"github.com/mwgc/mwgc/runtime/plan"
)

// checker runs the semantic rules over the merged model. Repository-wide
// rules (addresses, VRIDs) use maps filled in a fixed order, so the second
// occurrence is the one reported, pointing at the first.
type checker struct {
	l              *loader
	repo           *repo
	brokenClusters map[string]bool
	addrs          map[netip.Addr]use
	linkLocals     map[segAddr]use
	vrids          map[vridKey]use
	waiverDone     map[string]bool
	// domains links a segment to another name of its broadcast domain
	// (segments.go).
	domains map[string]string
	// partials are the packages checked without the files that do not
	// parse (partial.go).
	partials []*partialPackage
	// usedSegments and unknownSegments (with the first use) record the
	// segment references, for misspelt names (hints.go).
	usedSegments    map[string]bool
	unknownSegments map[string]Position
}

type use struct {
	what string
	inst *instance
	path []cue.Selector
	// segment the use is on, when the rule is per segment.
	segment string
}

type segAddr struct {
	segment string
	addr    netip.Addr
}

type vridKey struct {
	segment string
	family  string
	vrid    int
}

func newChecker(l *loader, r *repo) *checker {
	return &checker{
		l: l, repo: r,
		brokenClusters:  map[string]bool{},
		addrs:           map[netip.Addr]use{},
		linkLocals:      map[segAddr]use{},
		vrids:           map[vridKey]use{},
		waiverDone:      map[string]bool{},
		domains:         map[string]string{},
		usedSegments:    map[string]bool{},
		unknownSegments: map[string]Position{},
	}
}

func (c *checker) add(sev Severity, rule string, inst *instance, path []cue.Selector, hint, format string, args ...any) {
	c.l.add(Finding{Severity: sev, Rule: rule, Message: fmt.Sprintf(format, args...), Hint: hint, Pos: c.l.lookupPos(inst, path)})
}

func (c *checker) pos(inst *instance, path []cue.Selector) string {
	return c.l.lookupPos(inst, path).String()
}

func (s *segment) parse() {
	for i, text := range s.doc.CIDRs {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			continue
		}
		p = p.Masked()
		if p.Addr().Is4() && !s.v4.IsValid() {
			s.v4, s.v4At = p, i
		} else if p.Addr().Is6() && !s.v6.IsValid() {
			s.v6, s.v6At = p, i
		}
	}
}

func (s *segment) prefixFor(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return s.v4
	}
	return s.v6
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return plan.FamilyIPv4
	}
	return plan.FamilyIPv6
}

func usesProtocols(mode string) bool { return mode != plan.ModeExplicitProxy }

func (c *checker) run() {
	for _, name := range sortedKeys(c.repo.segments) {
		c.checkSegment(c.repo.segments[name])
	}
	c.checkOverlaps()
	live := c.liveClusters()
	for _, cl := range live {
		c.checkNodes(cl)
	}
	for _, cl := range live {
		c.checkMode(cl)
		if !usesProtocols(cl.doc.Mode) {
			continue
		}
		if cl.doc.VRRP != nil {
			c.checkVRRP(cl)
			c.checkVRRPAuth(cl)
			c.checkUnicast(cl)
		}
		if cl.doc.Management != nil {
			c.checkManagement(cl)
		}
		if cl.doc.Distribution != nil {
			c.checkDistribution(cl)
		}
	}
	c.checkUnusedSegments()
}

func (c *checker) liveClusters() []*cluster {
	var out []*cluster
	for _, cl := range c.repo.clusters {
		if !c.brokenClusters[cl.name] {
			out = append(out, cl)
		}
	}
	return out
}

func (c *checker) checkSegment(s *segment) {
	if s.broken {
		return
	}
	var n4, n6 int
	for i, text := range s.doc.CIDRs {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			continue
		}
		if p.Addr().Is4() {
			n4++
		} else {
			n6++
		}
		if n4 > 1 || n6 > 1 {
			c.add(SeverityError, "segment-cidrs", s.inst, sel("segments", s.name, "cidrs", i),
				"give a segment at most one IPv4 and one IPv6 prefix; use another segment for another subnet",
				"segment %s has a second %s prefix %s", s.name, familyOf(p.Addr()), text)
		}
	}
}

// isHostAddr reports whether a can be given to a host on prefix p: inside
// it, and neither its network address nor (IPv4) its broadcast address,
// except on /31 and /32 where every address is a host (RFC 3021).
func isHostAddr(p netip.Prefix, a netip.Addr) bool {
	if !p.IsValid() || !p.Contains(a) || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
		return false
	}
	if a.Is4() && p.Bits() >= 31 {
		return true
	}
	if a == p.Addr() {
		return false
	}
	return !a.Is4() || a != broadcast(p)
}

// segmentRef resolves a segment name used at path; unknown names are
// findings, segments with schema errors are skipped silently.
func (c *checker) segmentRef(cl *cluster, name string, path []cue.Selector) *segment {
	s := c.repo.segments[name]
	if s == nil && c.mayBeDefined(name) {
		return nil
	}
	if s == nil {
		c.unknownSegment(cl, name, path)
		return nil
	}
	c.usedSegments[name] = true
	if s.broken {
		return nil
	}
	return s
}

// mayBeDefined reports whether a file that does not parse mentions the
// segment name: it may define it.
func (c *checker) mayBeDefined(name string) bool {
	for _, p := range c.partials {
		if p.mayDefine(name) {
			return true
		}
	}
	return false
}

// checkProtected enforces that VIPs and management IPs live on protected
// segments, unless the segment carries a waiver with a written reason.
func (c *checker) checkProtected(cl *cluster, s *segment, path []cue.Selector, what string) {
	if s.doc.Protected {
		return
	}
	if s.doc.Waiver == nil {
		c.add(SeverityError, "unprotected-segment", cl.inst, path,
			"move them to a protected segment, or set protected: true if only the cluster can send there, or add waiver: reason: \"...\" to the segment",
			"%s on segment %s, which is not protected: any host there can take over the role", what, s.name)
		return
	}
	if c.waiverDone[s.name] {
		return
	}
	c.waiverDone[s.name] = true
	reason := strings.TrimSpace(s.doc.Waiver.Reason)
	if reason == "" {
		c.add(SeverityError, "waiver-reason", s.inst, sel("segments", s.name, "waiver", "reason"),
			"write why the unprotected segment is acceptable, for the next reader",
			"the waiver of segment %s has no reason", s.name)
		return
	}
	c.add(SeverityNote, "segment-waived", s.inst, sel("segments", s.name, "waiver"),
		"", "segment %s is not protected; waived: %s", s.name, reason)
}

func nodePath(cl *cluster, node string, rest ...any) []cue.Selector {
	return sel(append([]any{"clusters", cl.name, "nodes", node}, rest...)...)
}

// checkNodes parses every node's interfaces and registers its addresses in
// the repository-wide maps.
func (c *checker) checkNodes(cl *cluster) {
	if len(cl.doc.Nodes) == 0 {
		c.add(SeverityError, "no-nodes", cl.inst, sel("clusters", cl.name, "nodes"),
			"add the cluster's nodes", "cluster %s has no nodes", cl.name)
	}
	for _, name := range sortedKeys(cl.doc.Nodes) {
		nd := cl.doc.Nodes[name]
		ni := &nodeInfo{name: name, doc: nd, ifaceBySegment: map[string]string{},
			addrs: map[string][]netip.Addr{}, linkLocal: map[string]netip.Addr{}}
		cl.nodes = append(cl.nodes, ni)
		for _, ifname := range sortedKeys(nd.Interfaces) {
			in := nd.Interfaces[ifname]
			seg := c.segmentRef(cl, in.Segment, nodePath(cl, name, "interfaces", ifname, "segment"))
			if prev, ok := ni.ifaceBySegment[in.Segment]; ok {
				c.add(SeverityError, "segment-multiple-interfaces", cl.inst, nodePath(cl, name, "interfaces", ifname, "segment"),
					"give the node one interface per segment (bond them if you need redundancy)",
					"node %s has interfaces %s and %s on segment %s: it is ambiguous which one runs the protocols", name, prev, ifname, in.Segment)
			} else {
				ni.ifaceBySegment[in.Segment] = ifname
			}
			for i, text := range in.Addresses {
				path := nodePath(cl, name, "interfaces", ifname, "addresses", i)
				a, err := netip.ParseAddr(text)
				if err != nil {
					continue
				}
				a = a.Unmap()
				ni.addrs[ifname] = append(ni.addrs[ifname], a)
				if seg != nil {
					if p := seg.prefixFor(a); !isHostAddr(p, a) {
						c.add(SeverityError, "address-outside-segment", cl.inst, path,
							"use an address inside the segment's prefix, or attach the interface to the right segment",
							"address %s of %s.%s is not a host address of segment %s (%s)", a, name, ifname, seg.name, strings.Join(seg.doc.CIDRs, ", "))
					}
				}
				c.claim(a, cl, path, fmt.Sprintf("node %s of cluster %s", name, cl.name))
			}
			if in.LinkLocal != "" {
				path := nodePath(cl, name, "interfaces", ifname, "linkLocal")
				a, err := netip.ParseAddr(in.LinkLocal)
				if err != nil {
					continue
				}
				if !a.Is6() || !a.IsLinkLocalUnicast() {
					c.add(SeverityError, "link-local-invalid", cl.inst, path,
						"use an address in fe80::/10, such as fe80::11", "linkLocal %s is not an IPv6 link-local address", a)
					continue
				}
				ni.linkLocal[ifname] = a
				k := segAddr{c.domain(in.Segment), a}
				if prev, ok := c.linkLocals[k]; ok {
					c.add(SeverityError, "address-duplicate", cl.inst, path,
						"every link-local address on a segment must be unique",
						"link-local %s on segment %s is already used by %s at %s%s", a, in.Segment, prev.what, c.pos(prev.inst, prev.path), alsoOn(prev.segment, in.Segment))
				} else {
					c.linkLocals[k] = use{fmt.Sprintf("node %s of cluster %s", name, cl.name), cl.inst, path, in.Segment}
				}
			}
		}
	}
}

// claim registers a in the repository-wide address map.
func (c *checker) claim(a netip.Addr, cl *cluster, path []cue.Selector, what string) {
	if prev, ok := c.addrs[a]; ok {
		c.add(SeverityError, "address-duplicate", cl.inst, path,
			"every address must be unique across the repository",
			"address %s is already used by %s at %s", a, prev.what, c.pos(prev.inst, prev.path))
		return
	}
	c.addrs[a] = use{what: what, inst: cl.inst, path: path}
}

func (c *checker) checkMode(cl *cluster) {
	if usesProtocols(cl.doc.Mode) {
		for _, part := range []struct {
			name    string
			missing bool
		}{{"vrrp", cl.doc.VRRP == nil}, {"management", cl.doc.Management == nil}} {
			if part.missing {
				c.add(SeverityError, "mode-missing-protocol", cl.inst, sel("clusters", cl.name, "mode"),
					fmt.Sprintf("add a %s section to the cluster", part.name),
					"mode %s uses %s, but cluster %s has no %s section", cl.doc.Mode, part.name, cl.name, part.name)
			}
		}
		return
	}
	if cl.doc.VRRP != nil {
		c.add(SeverityError, "mode-unused-protocol", cl.inst, sel("clusters", cl.name, "vrrp"),
			"remove the vrrp section, or change the mode", "mode %s does not use VRRP, but cluster %s configures it", cl.doc.Mode, cl.name)
	}
	if cl.doc.Management != nil {
		c.add(SeverityError, "mode-unused-protocol", cl.inst, sel("clusters", cl.name, "management"),
			"remove the management section, or change the mode", "mode %s does not use the management protocol, but cluster %s configures it", cl.doc.Mode, cl.name)
	}
	if cl.doc.Distribution != nil {
		c.add(SeverityError, "mode-unused-protocol", cl.inst, sel("clusters", cl.name, "distribution"),
			"remove the distribution section, or change the mode", "mode %s has no VIPs to distribute, but cluster %s configures a distribution", cl.doc.Mode, cl.name)
	}
}

func (c *checker) checkDuration(cl *cluster, path []cue.Selector, text string, lo, hi time.Duration, step time.Duration) {
	d, err := time.ParseDuration(text)
	switch {
	case err != nil:
		c.add(SeverityError, "interval-range", cl.inst, path, "write a duration such as \"100ms\" or \"1s\"", "%q is not a duration", text)
	case d < lo || d > hi:
		c.add(SeverityError, "interval-range", cl.inst, path, fmt.Sprintf("use a value from %v to %v", lo, hi), "%v is outside %v..%v", d, lo, hi)
	case step > 0 && d%step != 0:
		c.add(SeverityError, "interval-range", cl.inst, path, "VRRP carries the interval in centiseconds; round to 10ms", "%v is not a whole number of centiseconds", d)
	}
}

func (c *checker) directors(cl *cluster) []*nodeInfo {
	var out []*nodeInfo
	for _, n := range cl.nodes {
		if n.doc.Priority > 0 {
			out = append(out, n)
		}
	}
	return out
}

// groupFamily returns the family of a group's VIPs (from the first).
func groupFamily(g groupDoc) string {
	for _, text := range g.VIPs {
		if a, err := netip.ParseAddr(text); err == nil {
			return familyOf(a.Unmap())
		}
	}
	return plan.FamilyIPv4
}

func (c *checker) checkVRRP(cl *cluster) {
	v := cl.doc.VRRP
	vpath := func(rest ...any) []cue.Selector { return sel(append([]any{"clusters", cl.name, "vrrp"}, rest...)...) }
	dirs := c.directors(cl)

	// Priorities: in range (schema), distinct, 255 only for the owner.
	byPrio := map[int]string{}
	for _, n := range dirs {
		if prev, ok := byPrio[n.doc.Priority]; ok {
			c.add(SeverityError, "priority-tie", cl.inst, nodePath(cl, n.name, "priority"),
				"give every director its own priority; the highest is Active",
				"directors %s and %s both have priority %d: which one is Active would depend on their addresses", prev, n.name, n.doc.Priority)
		} else {
			byPrio[n.doc.Priority] = n.name
		}
	}
	maxPeers := 0
	for _, gname := range sortedKeys(v.Groups) {
		maxPeers = max(maxPeers, len(v.Groups[gname].ExternalPeers))
	}
	switch {
	case len(dirs) == 0:
		c.add(SeverityError, "no-director", cl.inst, sel("clusters", cl.name, "nodes"),
			"give at least one node a priority above 0 (priority 0 means scanning only)",
			"cluster %s runs VRRP but no node is a director", cl.name)
	case len(dirs)+maxPeers < 2:
		c.add(SeverityWarning, "single-director", cl.inst, nodePath(cl, dirs[0].name, "priority"),
			"give a second node a priority above 0, so that a backup can take over",
			"cluster %s has one director (%s): nothing takes over when it fails", cl.name, dirs[0].name)
	}

	if len(v.Groups) == 0 {
		c.add(SeverityError, "no-groups", cl.inst, vpath("groups"),
			"add a group with vrid, segment and vips", "cluster %s has a vrrp section without groups", cl.name)
	}

	// Announce burst.
	c.checkDuration(cl, vpath("announce", "interval"), v.Announce.Interval, 0, time.Second, 0)
	c.checkDuration(cl, vpath("announce", "repeatAfter"), v.Announce.RepeatAfter, 0, time.Minute, 0)
	c.checkDuration(cl, vpath("announce", "reannounce", "holdoff"), v.Announce.Reannounce.Holdoff, 100*time.Millisecond, time.Minute, 0)
	if d, err := time.ParseDuration(v.Announce.Reannounce.Refresh); err != nil || d != 0 {
		c.checkDuration(cl, vpath("announce", "reannounce", "refresh"), v.Announce.Reannounce.Refresh, time.Second, time.Hour, 0)
	}
	c.checkNotify(cl)

	owners := map[string]bool{}
	for _, n := range dirs {
		if n.doc.Priority == 255 {
			owners[n.name] = true
		}
	}
	// nodeAddr maps this cluster's node addresses to their node.
	nodeAddr := map[netip.Addr]*nodeInfo{}
	for _, n := range cl.nodes {
		for _, list := range n.addrs {
			for _, a := range list {
				nodeAddr[a] = n
			}
		}
	}
	for _, gname := range sortedKeys(v.Groups) {
		g := v.Groups[gname]
		gpath := func(rest ...any) []cue.Selector { return vpath(append([]any{"groups", gname}, rest...)...) }
		seg := c.segmentRef(cl, g.Segment, gpath("segment"))
		family := groupFamily(g)

		c.checkDuration(cl, gpath("advertInterval"), g.AdvertInterval, plan.MinAdvertInterval, plan.MaxAdvertInterval, 10*time.Millisecond)
		c.checkDuration(cl, gpath("preemptDelay"), g.PreemptDelay, 0, plan.MaxPreemptDelay, 0)
		// The agent enforces accept mode: without it, the Active director
		// drops every connection its clients make to the proxy on the VIP.
		if !g.AcceptMode && cl.doc.Mode == plan.ModeHAProxy {
			c.add(SeverityError, "accept-mode-ha-proxy", cl.inst, gpath("acceptMode"),
				"remove acceptMode: false (the default is true); strict accept mode is for transparent-router clusters, whose clients only route through the VIP",
				"group %s runs without accept mode in ha-proxy mode: the Active would drop every client connection to the proxy on its VIPs (RFC 9568 §6.4.3)", gname)
		}

		// VIPs: one family, inside the segment, not a node's address
		// unless that node is the owner, unique in the repository.
		for i, text := range g.VIPs {
			a, err := netip.ParseAddr(text)
			if err != nil {
				continue
			}
			a = a.Unmap()
			path := gpath("vips", i)
			if familyOf(a) != family {
				c.add(SeverityError, "vip-family-mixed", cl.inst, path,
					"use one group per address family (they fail over together)",
					"VIP %s is %s, but group %s is %s (from its first VIP)", a, familyOf(a), gname, family)
				continue
			}
			if seg != nil {
				// A link-local VIP is no gateway anyone can route to, and
				// IPv6 adverts carry the sender's link-local first.
				if p := seg.prefixFor(a); !isHostAddr(p, a) || a.IsLinkLocalUnicast() {
					c.add(SeverityError, "vip-outside-segment", cl.inst, path,
						"use an address inside the segment's prefix for this family, or run the group on the right segment",
						"VIP %s is not a host address of segment %s (%s)", a, seg.name, strings.Join(seg.doc.CIDRs, ", "))
				}
			}
			if n := nodeAddr[a]; n != nil {
				if !owners[n.name] {
					c.add(SeverityError, "vip-is-node-address", cl.inst, path,
						"use an address no node has; only the owner (priority 255) may have a VIP as its own address",
						"VIP %s is an address of node %s, which is not the owner (priority %d)", a, n.name, n.doc.Priority)
				}
				continue
			}
			c.claim(a, cl, path, fmt.Sprintf("VIP of group %s in cluster %s", gname, cl.name))
		}
		for owner := range owners {
			for _, text := range g.VIPs {
				a, err := netip.ParseAddr(text)
				if err == nil && nodeAddr[a.Unmap()] != nil && nodeAddr[a.Unmap()].name == owner {
					continue
				}
				if err == nil {
					c.add(SeverityError, "owner-priority", cl.inst, nodePath(cl, owner, "priority"),
						"use priority 254 or lower, unless the node owns every VIP as its own address",
						"node %s has priority 255 (owner) but VIP %s of group %s is not one of its addresses", owner, a.Unmap(), gname)
				}
			}
		}

		if seg == nil {
			continue
		}
		// VRID: unique per broadcast domain and family across the
		// repository.
		k := vridKey{c.domain(seg.name), family, g.VRID}
		if prev, ok := c.vrids[k]; ok {
			c.add(SeverityError, "vrid-duplicate", cl.inst, gpath("vrid"),
				"pick a VRID no other group uses on this segment for this family",
				"VRID %d (%s) on segment %s is already used by %s at %s%s", g.VRID, family, seg.name, prev.what, c.pos(prev.inst, prev.path), alsoOn(prev.segment, seg.name))
		} else {
			c.vrids[k] = use{fmt.Sprintf("group %s of cluster %s", gname, cl.name), cl.inst, gpath("vrid"), seg.name}
		}
		c.checkProtected(cl, seg, gpath("segment"), fmt.Sprintf("VIPs of group %s", gname))

		// Every director runs every group: it needs an interface on the
		// segment and a source address of the family.
		sources := map[netip.Addr]string{}
		for _, n := range dirs {
			ifname, ok := n.ifaceBySegment[seg.name]
			if !ok {
				c.add(SeverityError, "director-not-on-segment", cl.inst, nodePath(cl, n.name, "interfaces"),
					fmt.Sprintf("add an interface with segment: %q to the node, or make it scanning-only (priority 0)", seg.name),
					"director %s has no interface on segment %s, where group %s runs", n.name, seg.name, gname)
				continue
			}
			src, ok := groupSource(g, n, ifname, family)
			if !ok {
				hint := "add an IPv4 address on the segment to the interface"
				if family == plan.FamilyIPv6 {
					hint = "add linkLocal: \"fe80::...\" to the interface; IPv6 adverts come from a link-local address"
				}
				c.add(SeverityError, "vrrp-source-missing", cl.inst, nodePath(cl, n.name, "interfaces", ifname),
					hint, "director %s has no %s source address for group %s on %s", n.name, family, gname, ifname)
				continue
			}
			sources[src] = n.name
		}

		// External peers.
		for _, pname := range sortedKeys(g.ExternalPeers) {
			p := g.ExternalPeers[pname]
			a, err := netip.ParseAddr(p.Address)
			if err != nil {
				continue
			}
			a = a.Unmap()
			switch {
			case !isUnicast(g) && (familyOf(a) != family || (family == plan.FamilyIPv6 && !a.IsLinkLocalUnicast())):
				want := "an IPv4 address"
				if family == plan.FamilyIPv6 {
					want = "an IPv6 link-local address (adverts come from fe80::/10)"
				}
				c.add(SeverityError, "peer-address", cl.inst, gpath("externalPeers", pname, "address"),
					"write the address the peer sends its adverts from", "external peer %s of %s group %s must advertise from %s, not %s", pname, family, gname, want, a)
			case sources[a] != "":
				c.add(SeverityError, "peer-address", cl.inst, gpath("externalPeers", pname, "address"),
					"an external peer is not an mwgc node; remove it or fix the address", "external peer %s has the address of director %s", pname, sources[a])
			}
			if n, ok := byPrio[p.Priority]; ok {
				c.add(SeverityError, "priority-tie", cl.inst, gpath("externalPeers", pname, "priority"),
					"give every router of the group its own priority",
					"external peer %s has priority %d, like director %s", pname, p.Priority, n)
			}
		}
		// keepalived and FRR verify IPv4 adverts with the pseudo-header
		// form only: they would discard every advert of ours and go Active
		// beside us, a split brain that nothing on the wire reports.
		if family == plan.FamilyIPv4 && len(g.ExternalPeers) > 0 && g.Checksum == plan.ChecksumRFC9568 {
			c.add(SeverityWarning, "checksum-interop", cl.inst, gpath("checksum"),
				`set checksum: "pseudo-header" when the peers are keepalived or FRR; keep "rfc9568" only for routers that verify the message alone (Cisco, Juniper, Arista)`,
				"group %s sends the RFC 9568 IPv4 checksum (message only) to external peers %s; keepalived and FRR drop such adverts and would become Active too",
				gname, strings.Join(sortedKeys(g.ExternalPeers), ", "))
		}
	}
}

// vrrpSource is the address a director sends adverts from on ifname.
func vrrpSource(n *nodeInfo, ifname, family string) (netip.Addr, bool) {
	if family == plan.FamilyIPv6 {
		a, ok := n.linkLocal[ifname]
		return a, ok
	}
	for _, a := range n.addrs[ifname] {
		if a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (c *checker) checkManagement(cl *cluster) {
	m := cl.doc.Management
	mpath := func(rest ...any) []cue.Selector {
		return sel(append([]any{"clusters", cl.name, "management"}, rest...)...)
	}
	c.checkDuration(cl, mpath("discoveryInterval"), m.DiscoveryInterval, plan.MinDiscovery, plan.MaxDiscovery, 0)
	switch {
	case m.KeyFile == "" && !m.Unauthenticated:
		c.add(SeverityError, "management-key", cl.inst, mpath(),
			"add keyFile: \"/etc/mwgc/mgmt.key\" (the path on the nodes, never the key), or unauthenticated: true",
			"the management protocol of cluster %s has no key file", cl.name)
	case m.KeyFile != "" && m.Unauthenticated:
		c.add(SeverityError, "management-key", cl.inst, mpath("unauthenticated"),
			"remove one of keyFile and unauthenticated", "management of cluster %s sets both keyFile and unauthenticated", cl.name)
	case m.Unauthenticated:
		c.add(SeverityWarning, "management-unauthenticated", cl.inst, mpath("unauthenticated"),
			"set keyFile to an HMAC key file distributed to every node",
			"the management protocol of cluster %s runs without authentication: any host on the segment can pose as the active director", cl.name)
	}
	seg := c.segmentRef(cl, m.Segment, mpath("segment"))
	if seg == nil {
		return
	}
	if !seg.v4.IsValid() {
		c.add(SeverityError, "management-not-ipv4", cl.inst, mpath("segment"),
			"use a segment with an IPv4 prefix; the management protocol broadcasts over IPv4",
			"segment %s has no IPv4 prefix", seg.name)
		return
	}
	if seg.v4.Bits() >= 31 && m.Discovery != plan.DiscoveryUnicast {
		// RFC 3021 makes both addresses of a /31 hosts: the "broadcast"
		// would be a node's own address, and discovery would reach nobody.
		c.add(SeverityError, "management-no-broadcast", cl.inst, mpath("segment"),
			`give the management segment a prefix of /30 or shorter, or set discovery: "unicast"; the active director broadcasts discovery there`,
			"segment %s (%s) has no broadcast address: on a /31 or /32 every address is a node's own", seg.name, seg.v4)
		return
	}
	c.checkProtected(cl, seg, mpath("segment"), "management IPs")
	for _, n := range cl.nodes {
		ifname, on := n.ifaceBySegment[seg.name]
		if !on {
			c.add(SeverityError, "scanner-not-on-segment", cl.inst, nodePath(cl, n.name, "interfaces"),
				fmt.Sprintf("add an interface with segment: %q to the node", seg.name),
				"node %s has no interface on management segment %s: it cannot hear the active director's discovery", n.name, seg.name)
		}
		if n.doc.ManagementIP == "" {
			c.add(SeverityError, "management-ip-missing", cl.inst, nodePath(cl, n.name),
				"add managementIP: the node's IPv4 address on the management segment",
				"node %s has no managementIP", n.name)
			continue
		}
		a, err := netip.ParseAddr(n.doc.ManagementIP)
		if err != nil || !on {
			continue
		}
		found := false
		for _, x := range n.addrs[ifname] {
			found = found || x == a.Unmap()
		}
		if !found {
			c.add(SeverityError, "management-ip-not-on-interface", cl.inst, nodePath(cl, n.name, "managementIP"),
				fmt.Sprintf("use one of the addresses of %s, or add it there", ifname),
				"managementIP %s of node %s is not an address of its interface %s on segment %s", a, n.name, ifname, seg.name)
		}
	}
}
