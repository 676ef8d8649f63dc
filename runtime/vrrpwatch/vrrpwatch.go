// Package vrrpwatch sees the VRRP adverts that reach an interface before
// the kernel's IP input does, so that adverts carrying one of this node's
// own addresses are visible on a default host.
//
// Linux drops packets whose source is a local address at IP input
// (accept_local=0), so a raw IP socket never receives an advert forged in
// this node's name. A packet socket with a BPF filter sees the frame first:
// it keeps incoming IPv4 and IPv6 frames of IP protocol 112 and drops the
// node's own outgoing ones in the kernel. Nothing here changes a sysctl.
package vrrpwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Frame is one received VRRP advert as the link delivered it.
type Frame struct {
	Src netip.Addr
	// MAC is the Ethernet source address of the frame.
	MAC                     net.HardwareAddr
	Version, VRID, Priority uint8
	TTL                     uint8
}

const (
	ethHeader      = 14
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	protoVRRP      = 112
	packetOutgoing = 4 // PACKET_OUTGOING: our own transmissions
	snapLen        = 128
	ethPAll        = 0x0003
)

// filter keeps incoming (not outgoing) IPv4 or IPv6 frames carrying IP
// protocol 112 (without IPv6 extension headers: VRRP sends none), at most
// snapLen bytes of each.
var filter = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 9}, // to the last: drop
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv4, SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv6, SkipTrue: 3},
		bpf.RetConstant{Val: 0},
		bpf.LoadAbsolute{Off: ethHeader + 9, Size: 1}, // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoVRRP, SkipTrue: 2, SkipFalse: 3},
		bpf.LoadAbsolute{Off: ethHeader + 6, Size: 1}, // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoVRRP, SkipFalse: 1},
		bpf.RetConstant{Val: snapLen},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic("vrrpwatch: filter: " + err.Error())
	}
	return raw
}()

// Watcher reads the VRRP adverts arriving on one interface.
type Watcher struct {
	conn *packet.Conn
	ifi  *net.Interface
}

// Listen opens a packet socket on ifname with the filter attached before
// any frame is queued. It needs CAP_NET_RAW.
func Listen(ifname string) (*Watcher, error) {
	c, ifi, err := listen(ifname, filter)
	if err != nil {
		return nil, err
	}
	return &Watcher{conn: c, ifi: ifi}, nil
}

// listen opens a packet socket on ifname with filter attached before any
// frame is queued, not handed the host's own frames.
func listen(ifname string, filter []bpf.RawInstruction) (*packet.Conn, *net.Interface, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, nil, fmt.Errorf("vrrpwatch: interface %q: %w", ifname, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, ethPAll, &packet.Config{Filter: filter})
	if err != nil {
		return nil, nil, fmt.Errorf("vrrpwatch: packet socket on %s: %w", ifname, err)
	}
	ignoreOutgoing(c)
	return c, ifi, nil
}

// ignoreOutgoing asks the kernel not to hand the socket the frames the
// host sends (PACKET_IGNORE_OUTGOING, Linux 4.20): else every advert the
// node sends is cloned for the socket only for the filter to drop it.
// Without the option (an older kernel) the filter still drops them.
func ignoreOutgoing(c *packet.Conn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	})
}

// Interface is the interface watched.
func (w *Watcher) Interface() *net.Interface { return w.ifi }

// Read blocks until a well-formed advert arrives (anything else the filter
// let through is skipped) and decodes it into f, whose MAC reuses its
// storage. buf must hold snapLen bytes. After Close it returns an error:
// os.ErrClosed for a Read that was waiting, EBADF for one after. Once
// after the interface went down it returns ENETDOWN (the kernel's pending
// error); reading on is right.
func (w *Watcher) Read(buf []byte, f *Frame) error {
	for {
		n, _, err := w.conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if ParseFrame(buf[:n], f) {
			return nil
		}
	}
}

// SetReadDeadline makes a blocked Read return a timeout error at t.
func (w *Watcher) SetReadDeadline(t time.Time) error { return w.conn.SetReadDeadline(t) }

// Close closes the socket; a blocked Read returns.
func (w *Watcher) Close() error { return closeConn(w.conn) }

func closeConn(c *packet.Conn) error {
	err := c.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ParseFrame decodes an Ethernet frame carrying a VRRP message over IPv4 or
// IPv6 (possibly cut at snapLen) into f; false when it is not one.
func ParseFrame(b []byte, f *Frame) bool {
	if len(b) < ethHeader {
		return false
	}
	f.MAC = append(f.MAC[:0], b[6:12]...)
	ip := b[ethHeader:]
	var payload []byte
	switch binary.BigEndian.Uint16(b[12:]) {
	case etherTypeIPv4:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != protoVRRP {
			return false
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || len(ip) < ihl {
			return false
		}
		f.Src = netip.AddrFrom4([4]byte(ip[12:16]))
		f.TTL = ip[8]
		payload = ip[ihl:]
	case etherTypeIPv6:
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != protoVRRP {
			return false
		}
		f.Src = netip.AddrFrom16([16]byte(ip[8:24]))
		f.TTL = ip[7]
		payload = ip[40:]
	default:
		return false
	}
	if len(payload) < 3 {
		return false
	}
	f.Version, f.VRID, f.Priority = payload[0]>>4, payload[1], payload[2]
	return true
}
