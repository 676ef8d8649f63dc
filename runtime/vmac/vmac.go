// Package vmac gives a VRRP group the virtual MAC address of RFC 9568
// (00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6) on a macvlan
// interface, as keepalived's use_vmac and FRR's vrrpd do: the Active sends
// its adverts and announcements from that MAC and holds the VIPs there, so
// clients' neighbour caches never change on a failover; only the switches
// relearn the MAC from the new Active's first advert.
//
// The macvlan is in bridge mode, so frames from a peer that uses the same
// MAC still reach the parent interface, where adverts are received (FRR
// needs the same). While the group is not Active the macvlan is
// administratively down: it stays configured but sends nothing (no MLD
// report, no router solicitation), so a Backup never teaches a switch that
// the virtual MAC lives behind it. (FRR uses protodown instead; measured
// here, a flap of the parent link turns a macvlan's carrier back on
// despite protodown, and the kernel then speaks from the shared MAC.)
//
// All calls act in the network namespace of the calling thread and use
// netlink only (no /proc/sys), so they work under systemd's
// ProtectKernelTunables.
package vmac

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// MAC returns the virtual MAC of VRID vrid: 00:00:5e:00:01:vrid for IPv4,
// 00:00:5e:00:02:vrid for IPv6 (RFC 9568 §7.3).
func MAC(vrid uint8, ipv6 bool) net.HardwareAddr {
	fam := byte(1)
	if ipv6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, vrid}
}

// IPv4 per-interface settings (linux/ip.h IPV4_DEVCONF_*), set by netlink.
const (
	devconfRPFilter    = 8
	devconfARPAnnounce = 18
	devconfARPIgnore   = 19
)

// Ensure makes name a macvlan on parent with the virtual MAC of vrid for
// the family, in bridge mode, and down (silent until SetActive(name,
// true, ...)). It is idempotent: an existing interface of that
// name is adopted only when it is exactly such a macvlan (left behind by a
// crash); anything else of that name is an error and is not touched. An
// adopted macvlan keeps its state: one left up by a crashed Active
// carries the VIPs its clients still reach, and the caller decides when
// it goes down (the node: when another Active is heard).
//
// The settings it applies, and why:
//   - on the macvlan: no IPv6 address generation (a link-local derived from
//     the shared MAC would be the same on every router); arp_ignore=1, so it
//     answers ARP only for its own addresses (the VIPs), never for the
//     parent's; rp_filter=2 (loose), since replies to clients leave by the
//     parent's route;
//   - on the parent: arp_ignore=1, so the parent does not answer ARP for
//     the VIPs with its own MAC; arp_announce=2, so its ARP requests never
//     name a VIP as their sender. Linux uses the larger of the "all" and
//     the interface value for both, so stricter global settings still win.
//     They are not restored when the macvlan goes.
func Ensure(name, parent string, vrid uint8, ipv6 bool) error {
	if vrid == 0 {
		return fmt.Errorf("vmac: VRID 0 has no virtual MAC")
	}
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return fmt.Errorf("vmac: parent interface %q: %w", parent, err)
	}
	mac := MAC(vrid, ipv6)
	link, err := netlink.LinkByName(name)
	switch {
	case err == nil:
		if err := adoptable(link, p, mac); err != nil {
			return err
		}
	case errors.As(err, new(netlink.LinkNotFoundError)):
		link, err = create(name, p, mac) // down, as made
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("vmac: interface %q: %w", name, err)
	}
	if err := setIPv4Conf(link, map[int]uint32{devconfARPIgnore: 1, devconfRPFilter: 2}); err != nil {
		return fmt.Errorf("vmac: ARP settings of %s: %w", name, err)
	}
	if err := setIPv4Conf(p, map[int]uint32{devconfARPIgnore: 1, devconfARPAnnounce: 2}); err != nil {
		return fmt.Errorf("vmac: ARP settings of parent %s: %w", parent, err)
	}
	return nil
}

// adoptable accepts an existing interface only if it is the macvlan Ensure
// would have made.
func adoptable(link, parent netlink.Link, mac net.HardwareAddr) error {
	name := link.Attrs().Name
	mv, ok := link.(*netlink.Macvlan)
	switch {
	case !ok:
		return fmt.Errorf("vmac: interface %q exists and is a %s, not a macvlan: not touching it", name, link.Type())
	case mv.ParentIndex != parent.Attrs().Index:
		return fmt.Errorf("vmac: macvlan %q exists on another parent: not touching it", name)
	case !bytes.Equal(mv.HardwareAddr, mac):
		return fmt.Errorf("vmac: macvlan %q exists with MAC %v, not %v: not touching it", name, mv.HardwareAddr, mac)
	case mv.Mode != netlink.MACVLAN_MODE_BRIDGE:
		return fmt.Errorf("vmac: macvlan %q exists in mode %v, not bridge: not touching it", name, mv.Mode)
	}
	return nil
}

func create(name string, parent netlink.Link, mac net.HardwareAddr) (netlink.Link, error) {
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index, HardwareAddr: mac},
		Mode:      netlink.MACVLAN_MODE_BRIDGE,
	}
	if err := netlink.LinkAdd(mv); err != nil {
		return nil, fmt.Errorf("vmac: create macvlan %s on %s: %w", name, parent.Attrs().Name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("vmac: created %s but cannot find it: %w", name, err)
	}
	// Before the link goes up, or the kernel derives a link-local from the
	// shared MAC. A host without IPv6 refuses, and then needs nothing.
	if err := netlink.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE); err != nil &&
		!errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
		netlink.LinkDel(link)
		return nil, fmt.Errorf("vmac: no IPv6 address generation on %s: %w", name, err)
	}
	return link, nil
}

// SetActive brings the macvlan up (active) or down. The executor brings it
// up before the first advert of an Active period and down after the last
// (and after the VIPs are gone). An IPv6 group's advert source linkLocal
// is added on the way up (an administrative down flushes IPv6 addresses);
// pass the zero Addr for IPv4.
func SetActive(name string, active bool, linkLocal netip.Addr) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("vmac: interface %q: %w", name, err)
	}
	if !active {
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("vmac: set %s down: %w", name, err)
		}
		return nil
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("vmac: set %s up: %w", name, err)
	}
	if linkLocal.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: linkLocal.WithZone("").AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrReplace(link, a); err != nil {
			return fmt.Errorf("vmac: link-local %v on %s: %w", linkLocal, name, err)
		}
	}
	return nil
}

// Remove deletes the macvlan name; an absent one is not an error, and an
// interface of that name that is not a macvlan is left alone.
func Remove(name string) error {
	link, err := netlink.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vmac: interface %q: %w", name, err)
	}
	if _, ok := link.(*netlink.Macvlan); !ok {
		return fmt.Errorf("vmac: interface %q is a %s, not a macvlan: not removing it", name, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("vmac: remove %s: %w", name, err)
	}
	return nil
}

// setIPv4Conf sets per-interface IPv4 settings (IFLA_AF_SPEC / AF_INET /
// IFLA_INET_CONF), which the kernel accepts by netlink even where
// /proc/sys is read-only.
func setIPv4Conf(link netlink.Link, conf map[int]uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(link.Attrs().Index)
	req.AddData(msg)
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	inet := spec.AddRtAttr(unix.AF_INET, nil)
	c := inet.AddRtAttr(unix.IFLA_INET_CONF, nil)
	for id, v := range conf {
		c.AddRtAttr(id, nl.Uint32Attr(v))
	}
	req.AddData(spec)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
