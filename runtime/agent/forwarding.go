package agent

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/mwgc/mwgc/runtime/forward"
)

// NewForwarder is the Linux traffic distribution driver: runtime/forward
// for nftables, netlink for neighbours and links.
func (LinuxNetwork) NewForwarder() Forwarder { return linuxForwarder{forward.New()} }

type linuxForwarder struct{ *forward.Driver }

func (linuxForwarder) Neighbors(ifname string) (map[netip.Addr]net.HardwareAddr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	list, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	const valid = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
	out := map[netip.Addr]net.HardwareAddr{}
	for _, n := range list {
		if a, ok := netip.AddrFromSlice(n.IP); ok && n.State&valid != 0 && len(n.HardwareAddr) == 6 {
			out[a.Unmap()] = n.HardwareAddr
		}
	}
	return out, nil
}

func (linuxForwarder) Link(ifname string) (int, net.HardwareAddr, error) {
	in, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, nil, err
	}
	return in.Index, in.HardwareAddr, nil
}
