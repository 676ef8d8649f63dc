package mgmt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

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
//
// The socket is blocking and outside Go's network poller on purpose. The
// poller is edge-triggered: every datagram that arrives wakes the process,
// even while the reader deliberately pauses to let datagrams gather. A
// director with a thousand nodes would wake a thousand times per interval;
// with a blocking read and a pause it wakes a few dozen times.
type conn struct {
	fd      int
	ifname  string
	ifindex int
	port    int
	source  netip.Addr

	closing atomic.Bool
	reader  bool // a read loop owns the descriptor and closes it on exit
}

func listen(ifname string, port int, source netip.Addr) (*conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("management interface %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("management socket: %w", err)
	}
	fail := func(what string, err error) (*conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("management socket on %s port %d: %s: %w", ifname, port, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return fail("SO_BROADCAST", err)
	}
	if err := unix.BindToDevice(fd, ifname); err != nil {
		return fail("SO_BINDTODEVICE", err)
	}
	// As root the buffer may exceed net.core.rmem_max; otherwise take what
	// the kernel allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuffer)
	}
	// close() wakes a blocked read with shutdown(2); the timeout is a
	// second line of defence.
	tv := unix.NsecToTimeval(int64(time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return fail("bind", err)
	}
	return &conn{fd: fd, ifname: ifname, ifindex: ifi.Index, port: port, source: source}, nil
}

func (c *conn) send(to netip.Addr, b []byte) error {
	oob := (&ipv4.ControlMessage{Src: c.source.AsSlice(), IfIndex: c.ifindex}).Marshal()
	return unix.Sendmsg(c.fd, b, oob, &unix.SockaddrInet4{Port: c.port, Addr: to.As4()}, 0)
}

// errClosed is returned by reads once close was called.
var errClosed = errors.New("management socket closed")

// read returns one datagram; it blocks unless nonblock is set, in which
// case it returns ok=false when none is queued.
func (c *conn) read(buf []byte, nonblock bool) (n int, src netip.Addr, ok bool, err error) {
	flags := 0
	if nonblock {
		flags = unix.MSG_DONTWAIT
	}
	for {
		if c.closing.Load() {
			return 0, netip.Addr{}, false, errClosed
		}
		n, from, err := unix.Recvfrom(c.fd, buf, flags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
			if nonblock {
				return 0, netip.Addr{}, false, nil
			}
			continue // receive timeout: check for close, wait again
		case err != nil:
			return 0, netip.Addr{}, false, err
		}
		sa, isV4 := from.(*unix.SockaddrInet4)
		if !isV4 { // a shut-down socket returns 0 bytes and no address
			continue
		}
		return n, netip.AddrFrom4(sa.Addr), true, nil
	}
}

// close stops the socket. A blocked read wakes up (shutdown on an
// unconnected UDP socket fails with ENOTCONN but still wakes readers) and
// the read loop closes the descriptor; without a read loop it is closed here.
func (c *conn) close() error {
	if c.closing.Swap(true) {
		return nil
	}
	_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	if !c.reader {
		return unix.Close(c.fd)
	}
	return nil
}

// release closes the descriptor; called by the read loop when it exits.
func (c *conn) release() { unix.Close(c.fd) }
