package mgmt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"

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
// The socket is non-blocking and is registered with Go's network poller
// only while the read loop waits for traffic (conn.wait). The poller is
// edge-triggered: registered all the time, every datagram arriving while
// the loop pauses to let datagrams gather would wake the process, a
// thousand times per interval on a director with a thousand nodes. A
// blocking read would avoid that but holds the runtime's P inside a system
// call until the scheduler takes it back (up to ~10 ms), which would delay
// the agent's VRRP timers. So: while traffic flows the loop drains without
// blocking and pauses between drains; when none comes it blocks in the
// poller at no cost.
type conn struct {
	fd      int
	ifname  string
	ifindex int
	port    int
	source  netip.Addr

	closing atomic.Bool
	reader  bool                    // a read loop owns the descriptor and closes it on exit
	waiter  atomic.Pointer[os.File] // the poller registration while wait blocks
}

func listen(ifname string, port int, source netip.Addr) (*conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("management interface %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
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

// read returns one queued datagram without blocking; ok is false when
// none is queued.
func (c *conn) read(buf []byte) (n int, src netip.Addr, ok bool, err error) {
	for {
		if c.closing.Load() {
			return 0, netip.Addr{}, false, errClosed
		}
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
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

// wait blocks until a datagram is queued or the socket is closed. It
// registers a duplicate of the descriptor with Go's poller for the wait
// only; closing the duplicate deregisters it (os.File.Close removes it from
// epoll before closing).
func (c *conn) wait() error {
	dfd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dfd), "mgmt-socket")
	c.waiter.Store(f)
	defer func() {
		c.waiter.Store(nil)
		f.Close()
	}()
	if c.closing.Load() {
		return errClosed
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var peek [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN && err != unix.EWOULDBLOCK // false: wait for the poller
	})
	if c.closing.Load() {
		return errClosed
	}
	return err
}

// close stops the socket: a read loop blocked in wait wakes up, notices,
// and closes the descriptor; without a read loop it is closed here.
func (c *conn) close() error {
	if c.closing.Swap(true) {
		return nil
	}
	if f := c.waiter.Load(); f != nil {
		f.Close()
	}
	if !c.reader {
		return unix.Close(c.fd)
	}
	return nil
}

// release closes the descriptor; called by the read loop when it exits.
func (c *conn) release() { unix.Close(c.fd) }
