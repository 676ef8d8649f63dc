package netlab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Forger sends hand-made Ethernet frames from a lab node: an attacker on
// the segment, who may put any IP source (a director's) into a VRRP advert.
// The frames leave through a packet socket, so the kernel neither checks
// nor rewrites the source.
type Forger struct {
	conn *packet.Conn
	mac  net.HardwareAddr
	buf  []byte
}

// Forger opens a packet socket on ifname ("" = eth0) of node.
func (l *Lab) Forger(node, ifname string) *Forger {
	l.t.Helper()
	if ifname == "" {
		ifname = nodeIfname
	}
	var f *Forger
	err := l.Do(node, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err := packet.Listen(ifi, packet.Raw, 0, nil) // protocol 0: send only
		if err != nil {
			return err
		}
		f = &Forger{conn: c, mac: ifi.HardwareAddr}
		return nil
	})
	if err != nil {
		l.t.Fatalf("netlab: forger in %s: %v", node, err)
	}
	l.t.Cleanup(func() { f.conn.Close() })
	return f
}

// MAC is the Ethernet source the forger uses.
func (f *Forger) MAC() net.HardwareAddr { return f.mac }

// SendFrame sends a complete Ethernet frame as it is (an ARP packet, a
// neighbour advertisement).
func (f *Forger) SendFrame(frame []byte) error {
	_, err := f.conn.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[:6])})
	return err
}

// GratuitousARP is the frame by which mac claims addr: a broadcast ARP
// request whose sender and target protocol address are both addr, as
// arpspoof and a VRRP takeover send it.
func GratuitousARP(mac net.HardwareAddr, addr netip.Addr) []byte {
	p, err := arp.NewPacket(arp.OperationRequest, mac, addr, net.HardwareAddr{0, 0, 0, 0, 0, 0}, addr)
	if err != nil {
		panic("netlab: gratuitous ARP: " + err.Error())
	}
	body, err := p.MarshalBinary()
	if err != nil {
		panic("netlab: gratuitous ARP: " + err.Error())
	}
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	return append(append(b, 0x08, 0x06), body...)
}

// UnsolicitedNA is the frame by which mac claims the IPv6 address addr:
// an unsolicited Neighbor Advertisement with the override flag and the
// target link-layer option, from the link-local address src to all nodes,
// hop limit 255, with its checksum.
func UnsolicitedNA(mac net.HardwareAddr, src, addr netip.Addr) []byte {
	body, err := ndp.MarshalMessage(&ndp.NeighborAdvertisement{Override: true, TargetAddress: addr,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}})
	if err != nil {
		panic("netlab: neighbour advertisement: " + err.Error())
	}
	dst := netip.MustParseAddr("ff02::1")
	// x/net's icmp writes the checksum over the IPv6 pseudo-header.
	m := icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: body[4:]}}
	if body, err = m.Marshal(icmp.IPv6PseudoHeader(src.AsSlice(), dst.AsSlice())); err != nil {
		panic("netlab: neighbour advertisement: " + err.Error())
	}
	ip := make([]byte, 40)
	ip[0], ip[6], ip[7] = 0x60, 58, 255
	binary.BigEndian.PutUint16(ip[4:], uint16(len(body)))
	s16, d16 := src.As16(), dst.As16()
	copy(ip[8:], s16[:])
	copy(ip[24:], d16[:])
	b := append([]byte{0x33, 0x33, 0, 0, 0, 1}, mac...)
	b = append(b, 0x86, 0xdd)
	return append(append(b, ip...), body...)
}

// SendVRRP sends payload (a complete VRRP message; for IPv6 with its
// checksum already right) as an advert from src to the VRRP group with
// TTL / hop limit ttl.
func (f *Forger) SendVRRP(src netip.Addr, ttl uint8, payload []byte) error {
	f.buf = VRRPFrame(f.buf[:0], f.mac, src, ttl, payload)
	_, err := f.conn.WriteTo(f.buf, &packet.Addr{HardwareAddr: net.HardwareAddr(f.buf[:6])})
	return err
}

// SendVRRPTo sends payload as a unicast advert (keepalived's unicast_peer)
// from src to dst, in a frame for dstMAC, with TTL / hop limit ttl: a
// forger's unicast advert, or a peer's from behind a router (TTL below 255).
func (f *Forger) SendVRRPTo(dstMAC net.HardwareAddr, src, dst netip.Addr, ttl uint8, payload []byte) error {
	f.buf = VRRPFrameTo(f.buf[:0], f.mac, dstMAC, src, dst, ttl, payload)
	_, err := f.conn.WriteTo(f.buf, &packet.Addr{HardwareAddr: dstMAC})
	return err
}

// Flood sends the payload next returns for frame i as an advert from src
// at rate frames per second for d, in bursts every millisecond; it returns
// how many frames it sent.
func (f *Forger) Flood(src netip.Addr, rate int, d time.Duration, next func(i int) []byte) (int, error) {
	return f.FloodFrames(rate, d, func(i int) []byte {
		f.buf = VRRPFrame(f.buf[:0], f.mac, src, 255, next(i))
		return f.buf
	})
}

// FloodFrames sends the Ethernet frame next returns for frame i at rate
// frames per second for d, in bursts every millisecond; it returns how
// many frames it sent.
func (f *Forger) FloodFrames(rate int, d time.Duration, next func(i int) []byte) (int, error) {
	start := time.Now()
	sent := 0
	for elapsed := time.Duration(0); elapsed < d; elapsed = time.Since(start) {
		due := int(int64(rate) * int64(elapsed) / int64(time.Second))
		for ; sent < due; sent++ {
			if err := f.SendFrame(next(sent)); err != nil {
				return sent, err
			}
		}
		time.Sleep(time.Millisecond)
	}
	return sent, nil
}

// VRRPFrame appends an Ethernet frame carrying payload as IP protocol 112
// from src to 224.0.0.18 / ff02::12 (multicast MAC) to b.
func VRRPFrame(b []byte, srcMAC net.HardwareAddr, src netip.Addr, ttl uint8, payload []byte) []byte {
	if src.Is4() {
		b = append(b, 0x01, 0x00, 0x5e, 0x00, 0x00, 0x12)
		b = append(b, srcMAC...)
		b = append(b, 0x08, 0x00)
		ip := len(b)
		b = append(b, 0x45, 0xc0, 0, 0, 0, 0, 0, 0, ttl, 112, 0, 0)
		binary.BigEndian.PutUint16(b[ip+2:], uint16(20+len(payload)))
		s := src.As4()
		b = append(b, s[:]...)
		b = append(b, 224, 0, 0, 18)
		binary.BigEndian.PutUint16(b[ip+10:], ipChecksum(b[ip:ip+20]))
		return append(b, payload...)
	}
	b = append(b, 0x33, 0x33, 0x00, 0x00, 0x00, 0x12)
	b = append(b, srcMAC...)
	b = append(b, 0x86, 0xdd)
	b = append(b, 0x60, 0, 0, 0, 0, 0, 112, ttl)
	b = binary.BigEndian.AppendUint16(b[:len(b)-4], uint16(len(payload)))
	b = append(b, 112, ttl)
	s := src.As16()
	b = append(b, s[:]...)
	b = append(b, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12)
	return append(b, payload...)
}

// VRRPFrameTo appends an Ethernet frame carrying payload as IP protocol
// 112 from src to the unicast dst, for dstMAC, to b.
func VRRPFrameTo(b []byte, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, ttl uint8, payload []byte) []byte {
	b = append(b, dstMAC...)
	b = append(b, srcMAC...)
	if src.Is4() {
		b = append(b, 0x08, 0x00)
		ip := len(b)
		b = append(b, 0x45, 0xc0, 0, 0, 0, 0, 0, 0, ttl, 112, 0, 0)
		binary.BigEndian.PutUint16(b[ip+2:], uint16(20+len(payload)))
		s, d := src.As4(), dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		binary.BigEndian.PutUint16(b[ip+10:], ipChecksum(b[ip:ip+20]))
		return append(b, payload...)
	}
	b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	b = append(b, 112, ttl)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, payload...)
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// String describes the forger for test logs.
func (f *Forger) String() string { return fmt.Sprintf("forger %s", f.mac) }
