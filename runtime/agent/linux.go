package agent

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/announce"
	"github.com/mwgc/mwgc/runtime/conns"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/vip"
	"github.com/mwgc/mwgc/runtime/vmac"
	"github.com/mwgc/mwgc/runtime/vrrpnet"
)

// ErrWouldBlock is what PacketConn.TryReadPacket returns when no packet is
// queued (vrrpnet.ErrWouldBlock).
var ErrWouldBlock error = unix.EAGAIN

// LinuxNetwork is the real Network: raw VRRP sockets, the management UDP
// socket, netlink addresses and gratuitous ARP / unsolicited NA.
type LinuxNetwork struct{}

func (LinuxNetwork) Listen(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error) {
	c, err := vrrpnet.Listen(ifname, ipv6, source)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (LinuxNetwork) ListenSendOnly(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error) {
	c, err := vrrpnet.ListenSendOnly(ifname, ipv6, source)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (LinuxNetwork) EnsureVMAC(name, parent string, vrid uint8, ipv6 bool) error {
	return vmac.Ensure(name, parent, vrid, ipv6)
}
func (LinuxNetwork) SetVMAC(name string, active bool, linkLocal netip.Addr) error {
	return vmac.SetActive(name, active, linkLocal)
}
func (LinuxNetwork) RemoveVMAC(name string) error { return vmac.Remove(name) }

func (LinuxNetwork) ListenMgmt(ifname string, port int) (MgmtConn, error) {
	c, err := mgmt.Listen(ifname, port)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (LinuxNetwork) AddVIP(ifname string, p netip.Prefix) error    { return vip.Add(ifname, p) }
func (LinuxNetwork) RemoveVIP(ifname string, p netip.Prefix) error { return vip.Remove(ifname, p) }
func (LinuxNetwork) EndConnections(a netip.Addr) (int, error)      { return conns.End(a) }
func (LinuxNetwork) EnsureLinkLocal(ifname string, a netip.Addr) error {
	return vip.EnsureLinkLocal(ifname, a)
}

func (LinuxNetwork) ApplyRules(s nft.State) error { return nft.New().Apply(s) }
func (LinuxNetwork) CleanRules() error            { return nft.New().Clean() }

func (LinuxNetwork) OpenAnnouncer(ifname string) (Announcer, error) {
	a, err := announce.Open(ifname)
	if err != nil {
		return nil, err
	}
	return a, nil
}
