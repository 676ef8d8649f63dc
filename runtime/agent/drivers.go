package agent

import (
	"context"
	"net"
	"net/netip"

	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/node"
)

// Network is everything the agent does to the host's networking. The Linux
// implementation (LinuxNetwork) wraps runtime/vrrpnet, runtime/mgmt,
// runtime/vip and runtime/announce; tests inject a fake, so the executor's
// loop, reload and shutdown run without root.
type Network interface {
	// Listen opens a VRRP socket on ifname for one family, sending from source.
	Listen(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error)
	// ListenSendOnly opens a VRRP socket that only sends (on a virtual
	// MAC's macvlan: no group joined, nothing received).
	ListenSendOnly(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error)
	// EnsureVMAC, SetVMAC and RemoveVMAC manage a group's virtual-MAC
	// macvlan (runtime/vmac): made down, up only while the group is Active.
	EnsureVMAC(name, parent string, vrid uint8, ipv6 bool) error
	SetVMAC(name string, active bool, linkLocal netip.Addr) error
	RemoveVMAC(name string) error
	// ListenMgmt opens the management protocol's UDP socket.
	ListenMgmt(ifname string, port int) (MgmtConn, error)
	AddVIP(ifname string, p netip.Prefix) error
	// RemoveVIP must treat an absent address as success.
	RemoveVIP(ifname string, p netip.Prefix) error
	// EndConnections ends the TCP connections (not the listeners) whose
	// local address is a VIP the node no longer holds (runtime/conns) and
	// returns how many.
	EndConnections(a netip.Addr) (int, error)
	EnsureLinkLocal(ifname string, a netip.Addr) error
	OpenAnnouncer(ifname string) (Announcer, error)
	// ApplyRules makes mwgc's nftables tables hold s (runtime/nft: one
	// transaction, nothing else touched); CleanRules removes every table
	// of mwgc's, a crashed run's included.
	ApplyRules(s nft.State) error
	CleanRules() error
	// WatchLinks reports the host's link states to report: a full listing
	// before it returns, then every change, and a full listing again
	// whenever it had to resubscribe, until ctx ends. An error means the
	// first listing failed; the watcher keeps trying and says so to warn.
	WatchLinks(ctx context.Context, report LinkReport, warn func(error)) error
}

// PacketConn is one raw VRRP socket (see runtime/vrrpnet.Conn). The loop
// polls Fd for readability and then reads until ErrWouldBlock.
type PacketConn interface {
	Fd() int
	// TryReadPacket never blocks: it returns ErrWouldBlock when nothing is queued.
	TryReadPacket(buf []byte) (n int, src, dst netip.Addr, ttl int, err error)
	WritePacket(msg []byte) error
	Close() error
}

// UnicastConn is a PacketConn that can also send to a unicast peer
// (vrrpnet.Conn can); unicast groups need it. It is separate so that
// PacketConns written before unicast existed still satisfy PacketConn.
type UnicastConn interface {
	WritePacketTo(msg []byte, to netip.Addr) error
}

// MgmtConn is the management protocol's socket (see runtime/mgmt.Conn).
type MgmtConn interface {
	Fd() int
	// TryRead never blocks: ok is false when nothing is queued.
	TryRead(buf []byte) (n int, src netip.Addr, ok bool, err error)
	Send(from, to netip.Addr, b []byte) error
	Close() error
}

// Announcer sends one gratuitous ARP or unsolicited neighbour advertisement
// per call (see runtime/announce.Announcer).
type Announcer interface {
	Announce(vip netip.Addr) error
	Close() error
}

// LinkState is one interface's link state as the kernel reports it.
type LinkState = node.LinkState

// LinkReport receives link states from Network.WatchLinks. A full report
// lists every interface of the host: one it does not name does not exist.
// It must not block.
type LinkReport func(full bool, links []LinkState)

// Forwarder programs traffic distribution (runtime/forward) and reads what
// it needs from the host. A Network that can distribute traffic also
// implements ForwardingNetwork; without it Forwarding effects fail (and
// say so in /status).
type Forwarder interface {
	Apply(forward.State) error
	// Neighbors maps the IPv4 neighbours of ifname that have a link-layer
	// address to it.
	Neighbors(ifname string) (map[netip.Addr]net.HardwareAddr, error)
	// Link returns the index and MAC of ifname.
	Link(ifname string) (int, net.HardwareAddr, error)
}

// ForwardingNetwork is a Network with a traffic distribution driver.
type ForwardingNetwork interface {
	NewForwarder() Forwarder
}
