package mgmt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// recvBuffer is the socket receive buffer asked for: a director with
// thousands of nodes must absorb a burst of answers (each datagram costs a
// kernel buffer of about 1 KiB, far above its size).
const recvBuffer = 4 << 20

// conn is the UDP socket of one node: bound to the wildcard address and the
// plan's port on the management interface only (SO_BINDTODEVICE), so it
// hears broadcasts and unicast on that segment and nothing from other
// interfaces; it sends from the management address (IP_PKTINFO), whatever
// the interface's primary address is.
type conn struct {
	pc      *ipv4.PacketConn
	raw     net.PacketConn
	ifname  string
	ifindex int
	port    int
	source  netip.Addr
}

func listen(ifname string, port int, source netip.Addr) (*conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("management interface %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				serr = fmt.Errorf("SO_BROADCAST: %w", serr)
				return
			}
			if serr = unix.BindToDevice(int(fd), ifname); serr != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, serr)
				return
			}
			// As root the buffer may exceed net.core.rmem_max; otherwise
			// take what the kernel allows.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuffer)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	raw, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return nil, fmt.Errorf("management socket on %s port %d: %w", ifname, port, err)
	}
	return &conn{pc: ipv4.NewPacketConn(raw), raw: raw, ifname: ifname, ifindex: ifi.Index, port: port, source: source}, nil
}

func (c *conn) send(to netip.Addr, b []byte) error {
	dst := &net.UDPAddr{IP: to.AsSlice(), Port: c.port}
	_, err := c.pc.WriteTo(b, &ipv4.ControlMessage{Src: c.source.AsSlice(), IfIndex: c.ifindex}, dst)
	return err
}

// batch is a set of receive buffers for readBatch: recvmmsg takes every
// datagram queued in one system call, which matters to a director that
// receives thousands of answers per interval.
type batch struct {
	msgs []ipv4.Message
}

func newBatch(n int) *batch {
	b := &batch{msgs: make([]ipv4.Message, n)}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	return b
}

// readBatch blocks until at least one datagram arrives and returns how
// many were read into b.
func (c *conn) readBatch(b *batch) (int, error) {
	return c.pc.ReadBatch(b.msgs, 0)
}

// datagram i of the last readBatch.
func (b *batch) datagram(i int) (netip.Addr, []byte) {
	m := &b.msgs[i]
	var a netip.Addr
	if u, ok := m.Addr.(*net.UDPAddr); ok {
		a, _ = netip.AddrFromSlice(u.IP)
		a = a.Unmap()
	}
	return a, m.Buffers[0][:m.N]
}

func (c *conn) close() error { return c.raw.Close() }
