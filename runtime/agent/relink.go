package agent

import (
	"maps"
	"slices"
)

// Interfaces re-created under the same name — ifdown/ifup of a VLAN or a
// bond, a networking restart, a macvlan made again — come back with a new
// index, and everything bound to the old one is dead without an error:
// the VRRP and management sockets (SO_BINDTODEVICE and the multicast
// memberships resolve the name once), the announcers and watchers (packet
// sockets), the virtual-MAC macvlans on it (deleted with their parent),
// and the l2 forwarding rule (it names the outgoing index). The node sees
// only "gone, then up", leaves Fault and would run as Backup deaf and
// mute: hearing nothing, it would take over beside the real Active.
//
// So the executor keeps the index it last saw for each name and, when a
// link report shows a new one, binds everything it holds on that name
// again before the node takes the report. This is the executor's own
// bookkeeping of what it opened, like its socket maps, not node state.

// vmacSpec is how the executor made a virtual-MAC macvlan (EnsureVMAC),
// to make it again when its parent is re-created.
type vmacSpec struct {
	parent string
	vrid   uint8
	ipv6   bool
}

// relink notes the indexes and MACs of links and binds again what was
// bound to an interface whose index changed; an interface whose MAC
// changed under the same index (a bond with fail_over_mac, an
// administrator) gets announcers that send from the new MAC.
func (a *Agent) relink(links []LinkState) {
	if a.ifindex == nil {
		a.ifindex, a.ifmac = map[string]int{}, map[string]string{}
	}
	for _, l := range links {
		if l.Gone || l.Index <= 0 {
			continue
		}
		old, known := a.ifindex[l.Name]
		oldMAC := a.ifmac[l.Name]
		a.ifindex[l.Name], a.ifmac[l.Name] = l.Index, l.MAC
		switch {
		case known && old != l.Index:
			a.rebind(l.Name, old, l.Index)
		case known && oldMAC != l.MAC:
			a.remac(l.Name, oldMAC, l.MAC)
		}
	}
}

// remac follows a MAC change: the announcers put the MAC into every
// packet (opened again at the next announcement), and an l2 forwarding
// rule writes it as the source of the frames it forwards.
func (a *Agent) remac(name, oldMAC, newMAC string) {
	var what []string
	if a.dropAnnouncer(name) {
		what = append(what, "announcer")
	}
	if a.reapplyForwarding(name) {
		what = append(what, "forwarding")
	}
	a.log.Warn("interface MAC changed", "interface", name, "from", oldMAC, "to", newMAC, "followed", what)
}

// rebind opens again, on the interface now named name, everything the
// executor held on it.
func (a *Agent) rebind(name string, oldIndex, newIndex int) {
	var what []string
	for _, spec := range slices.Sorted(maps.Keys(a.vmacs)) {
		s := a.vmacs[spec]
		if s.parent != name {
			continue
		}
		if err := a.net.EnsureVMAC(spec, s.parent, s.vrid, s.ipv6); err != nil {
			a.log.Error("interface re-created: cannot make its virtual-MAC interface again", "interface", name, "vmac", spec, "err", err)
			continue
		}
		what = append(what, "macvlan "+spec)
	}
	for key := range a.vrrp {
		if key.Interface != name {
			continue
		}
		if err := a.openVRRP(key); err != nil {
			a.log.Error("interface re-created: cannot open its VRRP socket again", "interface", name, "socket", key, "err", err)
			continue
		}
		what = append(what, "vrrp "+key.Family())
	}
	for key := range a.mgmt {
		if key.Interface != name {
			continue
		}
		if err := a.openMgmt(key); err != nil {
			a.log.Error("interface re-created: cannot open its management socket again", "interface", name, "err", err)
			continue
		}
		what = append(what, "management")
	}
	if a.dropAnnouncer(name) {
		what = append(what, "announcer")
	}
	if w := a.spoof.byIf[name]; w != nil {
		w.w.Close()
		delete(a.spoof.byIf, name)
		a.openWatch(name)
		what = append(what, "impersonation watcher")
	}
	if w := a.claims.byIf[name]; w != nil {
		w.w.Close()
		delete(a.claims.byIf, name)
		a.openClaimWatch(name, w.addrs)
		what = append(what, "claim watcher")
	}
	if a.reapplyForwarding(name) {
		what = append(what, "forwarding")
	}
	a.log.Warn("interface re-created under the same name: bound again", "interface", name, "oldIndex", oldIndex, "index", newIndex, "what", what)
}

// dropAnnouncer closes the announcer of name, bound to its index and
// carrying its MAC; the next announcement opens one anew. It says whether
// there was one.
func (a *Agent) dropAnnouncer(name string) bool {
	an := a.announcers[name]
	if an == nil {
		return false
	}
	an.Close()
	delete(a.announcers, name)
	return true
}

// reapplyForwarding programs the l2 forwarding again when it leaves by
// name (its index and MAC are filled in anew) and says whether it did.
func (a *Agent) reapplyForwarding(name string) bool {
	d := a.forwarding.Director
	if d == nil || !d.L2 || d.OutInterface != name {
		return false
	}
	applied := a.applyForwarding(a.forwarding)
	a.post(func() { a.step(applied) }) // the node hears how it went, after the link report
	return true
}
