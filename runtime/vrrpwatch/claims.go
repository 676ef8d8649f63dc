package vrrpwatch

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// Claims: the ARP packets and IPv6 Neighbor Advertisements by which some
// host on the link tells the others that one of a set of addresses (the
// VIPs) lives at a hardware address. The Active holding a VIP is the only
// host that should ever send one; any other is an ARP spoofer, a host with
// the VIP configured by mistake, or a router answering by proxy ARP, and
// every client that believes it sends its traffic there.

// Claim is one frame claiming an address.
type Claim struct {
	Addr netip.Addr
	// MAC is the hardware address claimed: an ARP packet's sender hardware
	// address, an advertisement's target link-layer address option, or
	// without that option the frame's Ethernet source.
	MAC net.HardwareAddr
	// Kind is "arp-request", "arp-reply" or "neighbor-advertisement".
	Kind string
}

const (
	etherTypeARP      = 0x0806
	protoICMPv6       = 58
	icmpNeighborAdver = 136
	arpSenderIP       = ethHeader + 14
	ipv6Header        = 40
	naTarget          = ethHeader + ipv6Header + 8
	// maxFilteredIPv4 bounds the addresses the ARP part of the filter
	// compares (two instructions each; a BPF jump spans at most 255).
	// Beyond it every ARP frame is let through and Read compares.
	maxFilteredIPv4 = 120
)

// claimFilter keeps incoming ARP frames whose sender protocol address is
// one of addrs, and incoming IPv6 Neighbor Advertisements (no extension
// headers, as NDP sends none) whose target is one of addrs.
func claimFilter(addrs []netip.Addr) ([]bpf.RawInstruction, error) {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	prog := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: packetOutgoing, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.LoadAbsolute{Off: 12, Size: 2},
	}
	var arpPart []bpf.Instruction
	if len(v4) > maxFilteredIPv4 {
		arpPart = []bpf.Instruction{bpf.RetConstant{Val: snapLen}}
	} else {
		arpPart = []bpf.Instruction{bpf.LoadAbsolute{Off: arpSenderIP, Size: 4}}
		for _, a := range v4 {
			arpPart = append(arpPart,
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(a.AsSlice()), SkipTrue: 1},
				bpf.RetConstant{Val: snapLen})
		}
		arpPart = append(arpPart, bpf.RetConstant{Val: 0})
	}
	prog = append(prog, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeARP, SkipTrue: uint8(len(arpPart))})
	prog = append(prog, arpPart...)
	prog = append(prog,
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv6, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.LoadAbsolute{Off: ethHeader + 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMPv6, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.LoadAbsolute{Off: ethHeader + ipv6Header, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpNeighborAdver, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
	)
	for _, a := range v6 {
		b := a.As16()
		for w := range 4 {
			// On a mismatch skip the rest of this address's block: the
			// remaining words' load and compare, then the accept.
			skip := uint8(2*(3-w) + 1)
			prog = append(prog,
				bpf.LoadAbsolute{Off: uint32(naTarget + 4*w), Size: 4},
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(b[4*w:]), SkipTrue: skip})
		}
		prog = append(prog, bpf.RetConstant{Val: snapLen})
	}
	prog = append(prog, bpf.RetConstant{Val: 0})
	return bpf.Assemble(prog)
}

// ClaimWatcher reads the frames claiming a set of addresses on one interface.
type ClaimWatcher struct {
	conn  *packet.Conn
	addrs map[netip.Addr]bool
}

// ListenClaims opens a packet socket on ifname that receives the frames
// other hosts send claiming one of addrs, the filter attached before any
// frame is queued. It needs CAP_NET_RAW.
func ListenClaims(ifname string, addrs []netip.Addr) (*ClaimWatcher, error) {
	filter, err := claimFilter(addrs)
	if err != nil {
		return nil, fmt.Errorf("vrrpwatch: claim filter: %w", err)
	}
	c, _, err := listen(ifname, filter)
	if err != nil {
		return nil, err
	}
	set := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		set[a.Unmap()] = true
	}
	return &ClaimWatcher{conn: c, addrs: set}, nil
}

// Read blocks until a frame claiming one of the addresses arrives and
// decodes it into c; anything else is skipped. buf must hold snapLen
// bytes. Errors as Watcher.Read's.
func (w *ClaimWatcher) Read(buf []byte, c *Claim) error {
	for {
		n, _, err := w.conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if ParseClaim(buf[:n], c) && w.addrs[c.Addr] {
			return nil
		}
	}
}

// SetReadDeadline makes a blocked Read return a timeout error at t.
func (w *ClaimWatcher) SetReadDeadline(t time.Time) error { return w.conn.SetReadDeadline(t) }

// Close closes the socket; a blocked Read returns.
func (w *ClaimWatcher) Close() error { return closeConn(w.conn) }

// ParseClaim decodes an Ethernet frame that claims an address: an ARP
// request or reply over Ethernet and IPv4 (the sender's addresses are the
// claim: a receiver that knows the sender updates its entry from either),
// or an IPv6 Neighbor Advertisement with hop limit 255 (receivers drop
// any other). False for anything else.
func ParseClaim(b []byte, c *Claim) bool {
	if len(b) < ethHeader {
		return false
	}
	switch binary.BigEndian.Uint16(b[12:]) {
	case etherTypeARP:
		var p arp.Packet
		if p.UnmarshalBinary(b[ethHeader:]) != nil || p.HardwareType != 1 || p.ProtocolType != etherTypeIPv4 ||
			len(p.SenderHardwareAddr) != 6 || !p.SenderIP.Is4() {
			return false
		}
		switch p.Operation {
		case arp.OperationRequest:
			c.Kind = "arp-request"
		case arp.OperationReply:
			c.Kind = "arp-reply"
		default:
			return false
		}
		c.Addr, c.MAC = p.SenderIP, append(c.MAC[:0], p.SenderHardwareAddr...)
		return true
	case etherTypeIPv6:
		ip := b[ethHeader:]
		if len(ip) < ipv6Header || ip[0]>>4 != 6 || ip[6] != protoICMPv6 || ip[7] != 255 {
			return false
		}
		m, err := ndp.ParseMessage(ip[ipv6Header:])
		if err != nil {
			return false
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || !na.TargetAddress.Is6() {
			return false
		}
		c.Addr, c.Kind = na.TargetAddress, "neighbor-advertisement"
		c.MAC = append(c.MAC[:0], b[6:12]...)
		for _, o := range na.Options {
			if ll, ok := o.(*ndp.LinkLayerAddress); ok && ll.Direction == ndp.Target && len(ll.Addr) == 6 {
				c.MAC = append(c.MAC[:0], ll.Addr...)
			}
		}
		return true
	}
	return false
}
