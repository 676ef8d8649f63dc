package plandiff

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

func (d *differ) nodes() {
	for _, name := range unionKeys(d.b.nodes, d.a.nodes) {
		bn, an := d.b.nodes[name], d.a.nodes[name]
		switch {
		case bn == nil:
			d.nodeAdded(an)
		case an == nil:
			d.nodeRemoved(bn)
		default:
			d.nodeChanged(bn, an)
		}
	}
}

func (d *differ) nodeAdded(n *nodeView) {
	c := Change{Op: OpAdd, Subject: "node " + n.name, Wire: true}
	others := d.existingNodes(n.name)
	if n.priority == 0 {
		c.Detail = "scanning only"
		if d.a.mgmt == nil {
			c.Effect, c.Wire = noWire+" (the cluster runs no management protocol)", false
			d.add(c)
			return
		}
		c.Detail += ", management IP " + n.mgmtIP.String()
		c.Effect = fmt.Sprintf("answers the Active's discovery from %s; the Active lists it as up within one discovery interval (%s) of its agent starting",
			n.mgmtIP, dur(d.a.mgmt.DiscoveryInterval.D()))
		d.add(c)
		if len(others) > 0 {
			d.advise(fmt.Sprintf("Roll out the plans of the existing nodes before starting %s: the Active accepts answers only from members its own plan lists.", n.name))
		}
		return
	}
	c.Detail = fmt.Sprintf("director, priority %d", n.priority)
	c.Effect = "starts VRRP as Backup" + d.joinEffect(n.name)
	d.add(c)
	d.adviseNewDirector(n.name)
}

// existingNodes lists the nodes on both sides other than name.
func (d *differ) existingNodes(name string) []string {
	var out []string
	for _, k := range sortedKeys(d.a.nodes) {
		if k != name && d.b.nodes[k] != nil {
			out = append(out, k)
		}
	}
	return out
}

func (d *differ) adviseNewDirector(name string) {
	var peers []string
	for _, k := range directorNames(d.a, name) {
		if d.b.nodes[k] != nil && d.b.nodes[k].priority > 0 {
			peers = append(peers, k)
		}
	}
	slices.Sort(peers)
	if len(peers) == 0 {
		return
	}
	d.advise(fmt.Sprintf("Start %s's VRRP only after the plans of %s have landed: until their plans list it as a peer they drop its adverts (unknown-source), and if it became Active there would be two.",
		name, joinNames(peers)))
}

// joinEffect says what a router joining (or rising) does to the election.
func (d *differ) joinEffect(name string) string {
	if o, ok := d.firstOutcome(func(o outcome) bool { return o.after == name && o.moves() && o.before != "" }); ok {
		return fmt.Sprintf("; %s preempts: %s", name, d.vipsMove(o))
	}
	if act := d.activeAfter(); act != "" && act != name {
		return fmt.Sprintf("; %s stays Active", act)
	}
	return ""
}

func (d *differ) nodeRemoved(n *nodeView) {
	c := Change{Op: OpRemove, Subject: "node " + n.name, Wire: true}
	base := "its plan file is deleted, but its agent keeps running the last plan until you stop it"
	switch {
	case n.priority > 0:
		c.Detail = fmt.Sprintf("director, priority %d", n.priority)
		if o, ok := d.firstOutcome(func(o outcome) bool { return o.before == n.name && o.after != "" }); ok {
			c.Effect = fmt.Sprintf("%s; stopping it (SIGTERM) hands over with a priority-0 advert: %s", base, d.vipsMove(o))
		} else if o, ok := d.firstOutcome(func(o outcome) bool { return o.before == n.name }); ok {
			c.Effect = fmt.Sprintf("%s; stopping it removes %s and no director is left to take them", base, vipNoun(d.b.groups[o.group].VIPs))
		} else {
			c.Effect = base + "; it is a Backup, so stopping it moves nothing"
		}
		d.advise(fmt.Sprintf("Stop %s's agent before the other plans land: once they no longer list it they drop its adverts, and while it still runs it could hold the VIPs beside a new Active.", n.name))
	case d.b.mgmt != nil:
		c.Detail = "scanning only"
		c.Effect = fmt.Sprintf("%s; stopping it sends a leaving answer and the Active drops it from its table (if it just vanishes: after %d missed answers, %s)",
			base, d.b.mgmt.DeadAfter, dur(d.b.mgmt.DiscoveryInterval.D()*timeN(d.b.mgmt.DeadAfter)))
	default:
		c.Effect, c.Wire = base+"; "+noWire, false
	}
	d.add(c)
}

func (d *differ) nodeChanged(bn, an *nodeView) {
	switch {
	case bn.priority == an.priority:
	case bn.priority == 0:
		d.add(Change{Op: OpUpdate, Subject: "node " + an.name, Detail: fmt.Sprintf("priority 0 → %d: becomes a director", an.priority),
			Effect: "starts VRRP as Backup once its plan lands" + d.joinEffect(an.name), Wire: true})
		d.adviseNewDirector(an.name)
	case an.priority == 0:
		d.toScanner(bn)
	default:
		d.priorityChanged(bn, an)
	}
	if bn.mgmtIP != an.mgmtIP && an.mgmtIP.IsValid() && bn.mgmtIP.IsValid() {
		d.add(Change{Op: OpUpdate, Subject: "node " + an.name, Detail: fmt.Sprintf("management IP %s → %s", bn.mgmtIP, an.mgmtIP),
			Effect: fmt.Sprintf("its answers (and its discovery while Active) come from %s; the Active accepts them once its own plan lists the new address", an.mgmtIP),
			Wire:   true})
		d.advise(fmt.Sprintf("Roll out the other nodes' plans before %s's: they accept its messages only from the address their plans list.", an.name))
	}
	d.interfaces(bn, an)
	d.sources(bn, an)
}

func (d *differ) toScanner(bn *nodeView) {
	c := Change{Op: OpUpdate, Subject: "node " + bn.name, Detail: fmt.Sprintf("priority %d → 0: becomes scanning only", bn.priority), Wire: true}
	c.Effect = "stops VRRP once its plan lands"
	if o, ok := d.firstOutcome(func(o outcome) bool { return o.before == bn.name && o.after != "" }); ok {
		c.Effect += ": it hands over with a priority-0 advert and " + d.vipsMove(o)
	} else {
		c.Effect += "; it is a Backup, so nothing moves"
	}
	d.add(c)
	d.advise(fmt.Sprintf("Roll out %s's plan first: it hands over by itself, whereas the others, once their plans drop it, ignore its adverts while it may still hold the VIPs.", bn.name))
}

func (d *differ) priorityChanged(bn, an *nodeView) {
	name := an.name
	c := Change{Op: OpUpdate, Subject: "node " + name, Detail: fmt.Sprintf("priority %d → %d", bn.priority, an.priority), Wire: true}
	if o, ok := d.firstOutcome(func(o outcome) bool { return o.kind == preempts && o.after == name }); ok {
		c.Effect = fmt.Sprintf("once its plan lands, %s preempts: %s", name, d.vipsMove(o))
		if o.grace > 0 {
			counts := fmt.Sprintf("counts its adverts as the old %d", bn.priority)
			if an.priority == 255 {
				counts = "drops its priority-255 adverts (not-owner)"
			}
			d.adviseGrace(fmt.Sprintf("%s uses its raised priority only that long after its plan lands, and until %s's plan lists it with priority %d, %s %s and stays Active beside it.",
				name, o.before, an.priority, o.before, counts))
		}
	} else if o, ok := d.firstOutcome(func(o outcome) bool { return o.kind == preempts && o.before == name }); ok {
		c.Effect = fmt.Sprintf("once its plan lands, its adverts carry priority %d and %s preempts: %s", an.priority, o.after, d.vipsMove(o))
	} else if o, ok := d.firstOutcome(func(o outcome) bool { return o.after == name }); ok {
		c.Effect = fmt.Sprintf("%s stays Active; its adverts carry priority %d", name, an.priority)
		if o.blocked != "" {
			c.Effect += fmt.Sprintf(" (%s has a higher priority but preempt is off)", o.blocked)
		}
	} else {
		act := d.activeAfter()
		c.Effect, c.Wire = fmt.Sprintf("%s: %s stays Backup under %s", noWire, name, act), false
		if o, ok := d.firstOutcome(func(o outcome) bool { return o.blocked == name }); ok {
			c.Effect += fmt.Sprintf(" because preempt is off in group %s; it takes over only when %s fails", o.group, act)
		}
	}
	d.add(c)
}

// interfaces reports changes of the node's own addresses, which the agent
// never touches.
func (d *differ) interfaces(bn, an *nodeView) {
	for _, ifname := range unionKeys(bn.ifaces, an.ifaces) {
		bi, bok := bn.ifaces[ifname]
		ai, aok := an.ifaces[ifname]
		subject := fmt.Sprintf("node %s, interface %s", an.name, ifname)
		effect := noWire + " by itself: the agent never adds or removes a node's own addresses"
		switch {
		case !bok:
			d.add(Change{Op: OpAdd, Subject: subject, Detail: fmt.Sprintf("segment %s, %s", ai.Segment, prefixes(ai.Addresses)), Effect: effect})
		case !aok:
			d.add(Change{Op: OpRemove, Subject: subject, Detail: fmt.Sprintf("segment %s", bi.Segment), Effect: effect})
		default:
			var parts []string
			if bi.Segment != ai.Segment {
				parts = append(parts, fmt.Sprintf("segment %s → %s", bi.Segment, ai.Segment))
			}
			added, removed := diffPrefixList(bi.Addresses, ai.Addresses)
			for _, p := range added {
				parts = append(parts, "+ "+p.String())
			}
			for _, p := range removed {
				parts = append(parts, "- "+p.String())
			}
			if len(parts) > 0 {
				d.add(Change{Op: OpUpdate, Subject: subject, Detail: strings.Join(parts, ", "), Effect: effect})
			}
		}
	}
}

// sources reports groups whose router the agent replaces on this node: a
// new interface or source address is a new socket.
func (d *differ) sources(bn, an *nodeView) {
	for _, g := range sortedKeys(an.groups) {
		bg, ok := bn.groups[g]
		ag := an.groups[g]
		if !ok || replacedGroup(d.b, d.a, g) || (bg.Interface == ag.Interface && bg.Source == ag.Source) {
			continue
		}
		detail := fmt.Sprintf("VRRP source %s → %s", bg.Source, ag.Source)
		if bg.Interface != ag.Interface {
			detail = fmt.Sprintf("interface %s → %s, VRRP source %s → %s", bg.Interface, ag.Interface, bg.Source, ag.Source)
		}
		c := Change{Op: OpReplace, Subject: fmt.Sprintf("node %s, group %s", an.name, g), Detail: detail, Wire: true}
		if o := d.out[g]; o.kind == restarts && o.before == an.name {
			c.Effect = "its router is replaced (a new socket): " + d.restartEffect(o)
		} else {
			c.Effect = "its router is replaced (a new socket); it is a Backup, so nothing moves"
		}
		if ag.Source != bg.Source {
			c.Effect += fmt.Sprintf("; the other directors accept adverts from %s once their plans list it", ag.Source)
			if d.out[g].before == an.name {
				d.advise(fmt.Sprintf("Make %s a Backup before its VRRP source changes (lower its priority in an earlier change, or stop it): in whatever order the plans land, the others meanwhile drop the adverts of the Active from the address they do not list, and a second director takes the VIPs.", an.name))
			} else {
				d.advise(fmt.Sprintf("Roll out the other directors' plans before %s's: should it become Active before they list its new source %s, they would drop its adverts.", an.name, ag.Source))
			}
		}
		d.add(c)
	}
}

// restartEffect describes the Active's router being replaced: a handover
// to the best of the rest, and a takeover back when it preempts.
func (d *differ) restartEffect(o outcome) string {
	next := bestExcept(d.a.candidates(o.group), o.before)
	if next.name == "" {
		return fmt.Sprintf("it hands over and, with no other director, takes %s %s", vipNoun(d.a.groups[o.group].VIPs), d.takeoverIn(o))
	}
	interval := d.a.groups[o.group].AdvertInterval.D()
	h := outcome{group: o.group, kind: leaves, before: o.before, after: next.name, afterPrio: next.priority,
		takeover: vrrp.SkewTime(uint8(next.priority), interval)}
	s := "it hands over with a priority-0 advert and " + d.vipsMove(h)
	if o.after == o.before {
		s += fmt.Sprintf("; %s preempts and takes %s %s", o.before, itThem(d.a.groups[o.group].VIPs), d.takeoverIn(o))
	}
	return s
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// diffPrefixList returns the prefixes of next missing from prev and those
// of prev missing from next.
func diffPrefixList(prev, next []netip.Prefix) (added, removed []netip.Prefix) {
	for _, p := range next {
		if !slices.Contains(prev, p) {
			added = append(added, p)
		}
	}
	for _, p := range prev {
		if !slices.Contains(next, p) {
			removed = append(removed, p)
		}
	}
	return added, removed
}

func timeN(n int) time.Duration { return time.Duration(n) }
