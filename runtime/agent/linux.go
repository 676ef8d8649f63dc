package agent

import (
	"net/netip"

	"github.com/mwgc/mwgc/runtime/announce"
	"github.com/mwgc/mwgc/runtime/vip"
	"github.com/mwgc/mwgc/runtime/vrrpnet"
)

// LinuxNetwork is the real Network: raw VRRP sockets, netlink addresses and
// gratuitous ARP / unsolicited NA.
type LinuxNetwork struct{}

func (LinuxNetwork) Listen(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error) {
	c, err := vrrpnet.Listen(ifname, ipv6, source)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (LinuxNetwork) AddVIP(ifname string, p netip.Prefix) error    { return vip.Add(ifname, p) }
func (LinuxNetwork) RemoveVIP(ifname string, p netip.Prefix) error { return vip.Remove(ifname, p) }
func (LinuxNetwork) EnsureLinkLocal(ifname string, a netip.Addr) error {
	return vip.EnsureLinkLocal(ifname, a)
}

func (LinuxNetwork) OpenAnnouncer(ifname string) (Announcer, error) {
	a, err := announce.Open(ifname)
	if err != nil {
		return nil, err
	}
	return a, nil
}
