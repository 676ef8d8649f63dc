// Package vrrpnet is the Linux socket driver for VRRPv3: a raw IP protocol
// 112 socket on one interface for one address family.
//
// It joins the VRRP group (224.0.0.18 or ff02::12) on the interface, sends
// with TTL / hop limit 255 from a given source address without looping its
// own adverts back, and reports for every received message the source,
// destination and TTL / hop limit the packet arrived with, so the VRRP engine
// can apply RFC 9568's receive checks. Parsing and checksums of the VRRP
// message itself are the engine's business, except that for IPv6 the kernel
// computes and verifies the checksum (IPV6_CHECKSUM at offset 6).
package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// TTL is the TTL / hop limit VRRP sends with and requires on receive.
const TTL = 255

// The VRRP multicast groups.
var (
	GroupIPv4 = netip.MustParseAddr("224.0.0.18")
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// Conn sends and receives VRRP messages (the IP payload, without IP header)
// on one interface for one address family. ReadPacket and WritePacket may be
// called concurrently from different goroutines.
type Conn struct {
	ifi    *net.Interface
	source netip.Addr
	group  netip.Addr
	raw    *net.IPConn
	v4     *ipv4.PacketConn // exactly one of v4, v6 is set
	v6     *ipv6.PacketConn
	dst    *net.IPAddr
	cm4    *ipv4.ControlMessage // per-packet source and interface, built once
	cm6    *ipv6.ControlMessage
}

// Listen opens a raw protocol-112 socket on ifname for IPv4 (ipv6 false) or
// IPv6, bound to that interface, joined to the VRRP group on it, sending from
// source. source must be of the chosen family and assigned to the interface
// (for IPv6, VRRP wants the link-local address); a source the kernel does not
// accept shows up as an error from WritePacket.
func Listen(ifname string, ipv6 bool, source netip.Addr) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: interface %q: %w", ifname, err)
	}
	source = source.WithZone("")
	if !source.IsValid() || source.Unmap().Is4() == ipv6 {
		fam := "IPv4"
		if ipv6 {
			fam = "IPv6"
		}
		return nil, fmt.Errorf("vrrpnet: source %v is not an %s address", source, fam)
	}
	source = source.Unmap()

	network, laddr := "ip4:112", "0.0.0.0"
	if ipv6 {
		network, laddr = "ip6:112", "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		// Bound to the device: with groups on several interfaces, each Conn
		// sees only its own interface's adverts.
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: open raw %s socket on %s: %w", network, ifname, err)
	}
	c := &Conn{ifi: ifi, source: source, raw: pc.(*net.IPConn)}
	if ipv6 {
		err = c.setup6()
	} else {
		err = c.setup4()
	}
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("vrrpnet: %s on %s: %w", network, ifname, err)
	}
	return c, nil
}

func (c *Conn) setup4() error {
	c.group = GroupIPv4
	c.cm4 = &ipv4.ControlMessage{Src: net.IP(c.source.AsSlice()), IfIndex: c.ifi.Index}
	c.dst = &net.IPAddr{IP: net.IP(GroupIPv4.AsSlice())}
	p := ipv4.NewPacketConn(c.raw)
	c.v4 = p
	if err := p.JoinGroup(c.ifi, c.dst); err != nil {
		return fmt.Errorf("join %v: %w", GroupIPv4, err)
	}
	if err := p.SetMulticastInterface(c.ifi); err != nil {
		return fmt.Errorf("multicast interface: %w", err)
	}
	if err := p.SetMulticastTTL(TTL); err != nil {
		return fmt.Errorf("multicast TTL: %w", err)
	}
	if err := p.SetTTL(TTL); err != nil {
		return fmt.Errorf("TTL: %w", err)
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("multicast loopback: %w", err)
	}
	if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		return fmt.Errorf("control messages: %w", err)
	}
	return nil
}

func (c *Conn) setup6() error {
	c.group = GroupIPv6
	c.cm6 = &ipv6.ControlMessage{Src: net.IP(c.source.AsSlice()), IfIndex: c.ifi.Index, HopLimit: TTL}
	c.dst = &net.IPAddr{IP: net.IP(GroupIPv6.AsSlice())}
	p := ipv6.NewPacketConn(c.raw)
	c.v6 = p
	// The kernel fills in the checksum (with the IPv6 pseudo-header) on send
	// and drops received messages whose checksum is wrong.
	if err := p.SetChecksum(true, 6); err != nil {
		return fmt.Errorf("checksum offload: %w", err)
	}
	if err := p.JoinGroup(c.ifi, c.dst); err != nil {
		return fmt.Errorf("join %v: %w", GroupIPv6, err)
	}
	if err := p.SetMulticastInterface(c.ifi); err != nil {
		return fmt.Errorf("multicast interface: %w", err)
	}
	if err := p.SetMulticastHopLimit(TTL); err != nil {
		return fmt.Errorf("multicast hop limit: %w", err)
	}
	if err := p.SetHopLimit(TTL); err != nil {
		return fmt.Errorf("hop limit: %w", err)
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("multicast loopback: %w", err)
	}
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return fmt.Errorf("control messages: %w", err)
	}
	return nil
}

// Interface is the interface the Conn is bound to.
func (c *Conn) Interface() *net.Interface { return c.ifi }

// Source is the address adverts are sent from.
func (c *Conn) Source() netip.Addr { return c.source }

// Group is the VRRP multicast group adverts are sent to.
func (c *Conn) Group() netip.Addr { return c.group }

// ReadPacket reads one VRRP message into buf and returns its length, the IP
// source (without zone) and destination, and the TTL (IPv4) or hop limit (IPv6) it arrived
// with. A message longer than buf is truncated to len(buf). After Close it
// returns an error matching net.ErrClosed.
func (c *Conn) ReadPacket(buf []byte) (n int, src, dst netip.Addr, ttl int, err error) {
	for {
		var from net.Addr
		var ifindex int
		if c.v4 != nil {
			var cm *ipv4.ControlMessage
			n, cm, from, err = c.v4.ReadFrom(buf)
			if err != nil {
				return 0, src, dst, 0, err
			}
			if cm != nil {
				ttl, ifindex = cm.TTL, cm.IfIndex
				dst, _ = netip.AddrFromSlice(cm.Dst)
			}
		} else {
			var cm *ipv6.ControlMessage
			n, cm, from, err = c.v6.ReadFrom(buf)
			if err != nil {
				return 0, src, dst, 0, err
			}
			if cm != nil {
				ttl, ifindex = cm.HopLimit, cm.IfIndex
				dst, _ = netip.AddrFromSlice(cm.Dst)
			}
		}
		// SO_BINDTODEVICE already filters; this guards against a packet
		// queued before the bind took effect.
		if ifindex != 0 && ifindex != c.ifi.Index {
			continue
		}
		if ipa, ok := from.(*net.IPAddr); ok {
			src, _ = netip.AddrFromSlice(ipa.IP)
			// No zone: the Conn is bound to one interface, and peers in a
			// plan are written without one.
			src = src.Unmap()
		}
		return n, src, dst.Unmap(), ttl, nil
	}
}

// WritePacket sends msg (a complete VRRP message; for IPv6 the kernel fills
// in the checksum) to the VRRP group from the source address.
func (c *Conn) WritePacket(msg []byte) error {
	var err error
	if c.v4 != nil {
		_, err = c.v4.WriteTo(msg, c.cm4, c.dst)
	} else {
		_, err = c.v6.WriteTo(msg, c.cm6, c.dst)
	}
	if err != nil {
		return fmt.Errorf("vrrpnet: send to %v on %s from %v: %w", c.group, c.ifi.Name, c.source, err)
	}
	return nil
}

// SetReadDeadline makes a blocked or future ReadPacket return a timeout
// error (os.ErrDeadlineExceeded) at t; the zero time removes the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// Close leaves the group and closes the socket; a blocked ReadPacket returns.
func (c *Conn) Close() error {
	if c.v4 != nil {
		_ = c.v4.LeaveGroup(c.ifi, c.dst)
	} else if c.v6 != nil {
		_ = c.v6.LeaveGroup(c.ifi, c.dst)
	}
	err := c.raw.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
