// Package announce tells a link that an address has moved to this host: a
// gratuitous ARP for IPv4, an unsolicited neighbour advertisement with the
// override flag for IPv6, both carrying the interface's own MAC address.
//
// One call sends one packet; the caller (the VRRP driver) schedules bursts.
package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

// AllNodes is where unsolicited neighbour advertisements go (RFC 4861 7.2.6).
var AllNodes = netip.MustParseAddr("ff02::1")

// Announcer sends announcements on one interface. Its sockets are opened
// by Open, in the network namespace of the calling thread. Safe for
// concurrent use.
type Announcer struct {
	ifi *net.Interface

	mu      sync.Mutex
	arp     net.PacketConn   // AF_PACKET raw socket that only sends
	icmp    *ipv6.PacketConn // raw ICMPv6 socket that only sends; nil without IPv6
	icmpErr error            // why icmp is nil
	closed  bool
}

// Open prepares announcements on ifname. It fails if the interface does not
// exist or has no Ethernet address. A host without IPv6 can still announce
// IPv4 addresses; IPv6 announcements then fail with the reason.
func Open(ifname string) (*Announcer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("announce: interface %q: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("announce: interface %q has no Ethernet address", ifname)
	}
	// We only send: a filter that drops everything keeps received ARP from
	// queueing up on the socket.
	pc, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("announce: open packet socket on %s: %w", ifname, err)
	}
	a := &Announcer{ifi: ifi, arp: pc}
	a.icmp, a.icmpErr = listenICMPv6(ifi)
	return a, nil
}

func listenICMPv6(ifi *net.Interface) (*ipv6.PacketConn, error) {
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("open ICMPv6 socket: %w", err)
	}
	p := ipv6.NewPacketConn(c)
	// The kernel computes ICMPv6 checksums itself. Block every type on
	// receive so nothing queues up.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, set := range []func() error{
		func() error { return p.SetICMPFilter(&f) },
		func() error { return p.SetMulticastHopLimit(ndp.HopLimit) },
		func() error { return p.SetMulticastInterface(ifi) },
		func() error { return p.SetMulticastLoopback(false) },
	} {
		if err := set(); err != nil {
			c.Close()
			return nil, fmt.Errorf("set up ICMPv6 socket: %w", err)
		}
	}
	return p, nil
}

// Announce sends one packet announcing vip from the interface's MAC:
// for IPv4 an ARP request with sender and target protocol address vip,
// broadcast (the gratuitous ARP form keepalived and arping -U send, which
// every neighbour cache honours); for IPv6 a neighbour advertisement for vip with the
// override flag and a target link-layer address option, from the
// interface's link-local address to ff02::1 with hop limit 255.
func (a *Announcer) Announce(vip netip.Addr) error {
	vip = vip.Unmap().WithZone("")
	switch {
	case vip.Is4():
		return a.announce4(vip)
	case vip.Is6():
		return a.announce6(vip)
	default:
		return fmt.Errorf("announce: invalid address %v", vip)
	}
}

func (a *Announcer) announce4(vip netip.Addr) error {
	frame, err := gratuitousARP(a.ifi.HardwareAddr, vip)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return net.ErrClosed
	}
	to := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	_, err = a.arp.WriteTo(frame, to)
	if errors.Is(err, syscall.ENETDOWN) {
		// When the interface went down, the kernel left ENETDOWN pending
		// on this socket (packet_notifier sets sk_err); the first send
		// since returns it and clears it, whatever the interface's state
		// now: the first announcement after every link flap was lost.
		// Send once more: if the interface really is down, this fails too.
		_, err = a.arp.WriteTo(frame, to)
	}
	if err != nil {
		return fmt.Errorf("announce: gratuitous ARP for %v on %s: %w", vip, a.ifi.Name, err)
	}
	return nil
}

var dropAll = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic(err)
	}
	return raw
}()

// gratuitousARP builds the Ethernet frame of a gratuitous ARP request.
func gratuitousARP(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationRequest, mac, vip, ethernet.Broadcast, vip)
	if err != nil {
		return nil, fmt.Errorf("announce: ARP packet for %v: %w", vip, err)
	}
	body, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: body}
	return f.MarshalBinary()
}

func (a *Announcer) announce6(vip netip.Addr) error {
	msg, err := ndp.MarshalMessage(unsolicitedNA(a.ifi.HardwareAddr, vip))
	if err != nil {
		return fmt.Errorf("announce: neighbour advertisement for %v: %w", vip, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return net.ErrClosed
	}
	if a.icmp == nil {
		return fmt.Errorf("announce: neighbour advertisement for %v on %s: %w", vip, a.ifi.Name, a.icmpErr)
	}
	// No source in the control message: for ff02::1 the kernel picks the
	// interface's link-local address, as RFC 4861 expects.
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, IfIndex: a.ifi.Index}
	// Zone by index, not name: a name is resolved in the namespace of the
	// sending thread, which need not be the one the Announcer was opened in.
	dst := &net.IPAddr{IP: AllNodes.AsSlice(), Zone: strconv.Itoa(a.ifi.Index)}
	if _, err := a.icmp.WriteTo(msg, cm, dst); err != nil {
		return fmt.Errorf("announce: neighbour advertisement for %v on %s: %w", vip, a.ifi.Name, err)
	}
	return nil
}

func unsolicitedNA(mac net.HardwareAddr, vip netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
}

// Close releases the sockets; later Announce calls fail with net.ErrClosed.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	errs := []error{a.arp.Close()}
	if a.icmp != nil {
		errs = append(errs, a.icmp.Close())
		a.icmp = nil
	}
	a.closed = true
	return errors.Join(errs...)
}
