package mgmt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvBuffer is the socket receive buffer asked for: a director with
// thousands of nodes must absorb a burst of answers (each datagram costs a
// kernel buffer of about 1 KiB, far above its size).
const recvBuffer = 4 << 20

// Conn is the UDP socket of one node: bound to the wildcard address and the
// plan's port on the management interface only (SO_BINDTODEVICE), so it
// hears broadcasts and unicast on that segment and nothing from other
// interfaces; it sends from the management address (IP_PKTINFO), whatever
// the interface's primary address is.
//
// The socket is non-blocking and never registered with Go's network
// poller: the agent's event loop polls Fd and reads with TryRead, so a
// datagram wakes nothing but the loop (which, on a director with a
// thousand nodes, lets answers gather between drains).
type Conn struct {
	ifname  string
	ifindex int
	port    int

	mu sync.Mutex // held around system calls on fd, so Close cannot race them
	fd int        // -1 after Close
}

// ErrClosed is returned by reads and sends after Close.
var ErrClosed = errors.New("management socket closed")

// Listen opens the management socket on ifname at port.
func Listen(ifname string, port int) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("management interface %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("management socket: %w", err)
	}
	fail := func(what string, err error) (*Conn, error) {
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
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return fail("bind", err)
	}
	return &Conn{fd: fd, ifname: ifname, ifindex: ifi.Index, port: port}, nil
}

// Fd is the socket, for an event loop to poll for readability.
func (c *Conn) Fd() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fd
}

// Send sends b to the plan's port at to, from the management address from.
func (c *Conn) Send(from, to netip.Addr, b []byte) error {
	var oob [unix.SizeofCmsghdr + unix.SizeofInet4Pktinfo + 4]byte
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	pi.Ifindex = int32(c.ifindex)
	pi.Spec_dst = from.As4()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return ErrClosed
	}
	return unix.Sendmsg(c.fd, b, oob[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)], &unix.SockaddrInet4{Port: c.port, Addr: to.As4()}, unix.MSG_DONTWAIT)
}

// TryRead returns one queued datagram without blocking; ok is false when
// none is queued.
func (c *Conn) TryRead(buf []byte) (n int, src netip.Addr, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.fd < 0 {
			return 0, netip.Addr{}, false, ErrClosed
		}
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, netip.Addr{}, false, nil
		case err != nil:
			return 0, netip.Addr{}, false, err
		}
		sa, isV4 := from.(*unix.SockaddrInet4)
		if !isV4 {
			continue
		}
		return n, netip.AddrFrom4(sa.Addr), true, nil
	}
}

// Close closes the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}
