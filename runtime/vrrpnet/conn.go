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
//
// The socket is made with plain system calls and is never registered with
// Go's network poller unless a blocking ReadPacket waits on it: an event
// loop polls Fd itself and reads with TryReadPacket, and nothing else in
// the process wakes up for its packets.
package vrrpnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// ErrWouldBlock is TryReadPacket's answer when no message is queued.
var ErrWouldBlock = unix.EAGAIN

// Conn sends and receives VRRP messages (the IP payload, without IP header)
// on one interface for one address family. Its methods may be called
// concurrently.
type Conn struct {
	ifi    *net.Interface
	source netip.Addr
	group  netip.Addr
	ipv6   bool
	// receive is false for a send-only Conn: no group joined, and a
	// socket filter drops everything it would receive.
	receive bool

	mu sync.Mutex // held around system calls on fd, so Close cannot race them
	fd int        // -1 after Close

	// Built once: the destination and the control message that sets the
	// source address and interface of every advert.
	dst    [unix.SizeofSockaddrInet6]byte
	dstLen uint32
	oob    []byte
	// hdr4 is the IPv4 header of every advert (IP_HDRINCL): the kernel
	// fills in the length, identification and checksum.
	hdr4 [20]byte

	deadline atomic.Int64 // ReadPacket's deadline in UnixNano; 0: none
	closing  atomic.Bool
	waiter   atomic.Pointer[os.File] // ReadPacket's poller registration while it waits
}

// Listen opens a raw protocol-112 socket on ifname for IPv4 (ipv6 false) or
// IPv6, bound to that interface, joined to the VRRP group on it, sending from
// source. source must be of the chosen family and assigned to the interface
// (for IPv6, VRRP wants the link-local address); a source the kernel does not
// accept shows up as an error from WritePacket.
func Listen(ifname string, ipv6 bool, source netip.Addr) (*Conn, error) {
	return open(ifname, ipv6, source, true)
}

// ListenSendOnly opens a Conn that only sends: bound to ifname like Listen,
// but joined to no group and with a socket filter that drops everything it
// would receive. A group with a virtual MAC sends its adverts on its
// macvlan (ListenSendOnly) and receives them on the parent (Listen):
// joining the group on the macvlan would make the kernel send IGMP / MLD
// reports from the virtual MAC.
func ListenSendOnly(ifname string, ipv6 bool, source netip.Addr) (*Conn, error) {
	return open(ifname, ipv6, source, false)
}

func open(ifname string, ipv6 bool, source netip.Addr, receive bool) (*Conn, error) {
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
	c := &Conn{ifi: ifi, source: source.Unmap(), ipv6: ipv6, group: vrrp.GroupIPv4, receive: receive}
	domain, name := unix.AF_INET, "ip4:112"
	if ipv6 {
		domain, name, c.group = unix.AF_INET6, "ip6:112", vrrp.GroupIPv6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, vrrp.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: open raw %s socket on %s: %w", name, ifname, os.NewSyscallError("socket", err))
	}
	c.fd = fd
	// Bound to the device: with groups on several interfaces, each Conn
	// sees only its own interface's adverts.
	if err := unix.BindToDevice(fd, ifname); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrpnet: %s on %s: SO_BINDTODEVICE: %w", name, ifname, err)
	}
	if !receive {
		// Nothing to read: a filter that accepts nothing keeps the receive
		// queue empty.
		prog := unix.SockFprog{Len: 1, Filter: &unix.SockFilter{Code: 0x06, K: 0}} // BPF_RET|BPF_K 0
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("vrrpnet: %s on %s: receive filter: %w", name, ifname, err)
		}
	}
	if ipv6 {
		err = c.setup6()
	} else {
		err = c.setup4()
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrpnet: %s on %s: %w", name, ifname, err)
	}
	// A raw socket receives protocol 112 from every interface until
	// SO_BINDTODEVICE takes effect: drop what came before it.
	var buf [64]byte
	for {
		if _, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	return c, nil
}

func (c *Conn) setup4() error {
	fd := c.fd
	group := c.group.As4()
	opts := []struct {
		name string
		opt  int
		val  int
	}{
		{"multicast TTL", unix.IP_MULTICAST_TTL, vrrp.RequiredTTL},
		{"TTL", unix.IP_TTL, vrrp.RequiredTTL},
		{"multicast loopback", unix.IP_MULTICAST_LOOP, 0},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	// The header is ours (as keepalived does): the kernel skips building
	// one for every advert.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return fmt.Errorf("IP_HDRINCL: %w", err)
	}
	c.hdr4 = [20]byte{0: 0x45, 8: vrrp.RequiredTTL, 9: vrrp.ProtocolNumber}
	src := c.source.As4()
	copy(c.hdr4[12:16], src[:])
	copy(c.hdr4[16:20], group[:])
	mreq := &unix.IPMreqn{Multiaddr: group, Ifindex: int32(c.ifi.Index)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
		return fmt.Errorf("multicast interface: %w", err)
	}
	if c.receive {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
			return fmt.Errorf("join %v: %w", c.group, err)
		}
	}
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&c.dst[0]))
	sa.Family = unix.AF_INET
	sa.Addr = group
	c.dstLen = unix.SizeofSockaddrInet4
	return nil
}

func (c *Conn) setup6() error {
	fd := c.fd
	// The kernel fills in the checksum (with the IPv6 pseudo-header) on send
	// and drops received messages whose checksum is wrong.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 6); err != nil {
		return fmt.Errorf("checksum offload: %w", err)
	}
	opts := []struct {
		name string
		opt  int
		val  int
	}{
		{"multicast interface", unix.IPV6_MULTICAST_IF, c.ifi.Index},
		{"multicast hop limit", unix.IPV6_MULTICAST_HOPS, vrrp.RequiredTTL},
		{"hop limit", unix.IPV6_UNICAST_HOPS, vrrp.RequiredTTL},
		{"multicast loopback", unix.IPV6_MULTICAST_LOOP, 0},
		{"receive hop limit", unix.IPV6_RECVHOPLIMIT, 1},
		{"receive packet info", unix.IPV6_RECVPKTINFO, 1},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	mreq := &unix.IPv6Mreq{Multiaddr: c.group.As16(), Interface: uint32(c.ifi.Index)}
	if c.receive {
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
			return fmt.Errorf("join %v: %w", c.group, err)
		}
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&c.dst[0]))
	sa.Family = unix.AF_INET6
	sa.Addr = c.group.As16()
	sa.Scope_id = uint32(c.ifi.Index)
	c.dstLen = unix.SizeofSockaddrInet6
	c.oob = make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c.oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&c.oob[unix.CmsgLen(0)]))
	pi.Ifindex = uint32(c.ifi.Index)
	pi.Addr = c.source.As16()
	return nil
}

// Interface is the interface the Conn is bound to.
func (c *Conn) Interface() *net.Interface { return c.ifi }

// Source is the address adverts are sent from.
func (c *Conn) Source() netip.Addr { return c.source }

// Group is the VRRP multicast group adverts are sent to.
func (c *Conn) Group() netip.Addr { return c.group }

// Fd is the socket, for an event loop to poll for readability (then
// TryReadPacket). It is -1 after Close.
func (c *Conn) Fd() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fd
}

// TryReadPacket reads one queued VRRP message into buf without blocking:
// its length, the IP source and destination, and the TTL (IPv4) or hop
// limit (IPv6) it arrived with. It returns ErrWouldBlock when none is
// queued, net.ErrClosed after Close. A message longer than buf is
// truncated to len(buf).
func (c *Conn) TryReadPacket(buf []byte) (n int, src, dst netip.Addr, ttl int, err error) {
	for {
		n, src, dst, ttl, err = c.recv(buf)
		if err != errSkip {
			return n, src, dst, ttl, err
		}
	}
}

// errSkip: a datagram that is not a VRRP message for us (a truncated IPv4
// header); read the next one.
var errSkip = errors.New("skip")

func (c *Conn) recv(buf []byte) (n int, src, dst netip.Addr, ttl int, err error) {
	var from [unix.SizeofSockaddrInet6]byte
	var oob [64]byte
	iov := unix.Iovec{Base: unsafe.SliceData(buf)}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Name: &from[0], Namelen: uint32(len(from)), Iov: &iov, Iovlen: 1}
	if c.ipv6 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return 0, src, dst, 0, net.ErrClosed
	}
	// Never blocks (MSG_DONTWAIT), so the runtime need not know about it.
	r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
	c.mu.Unlock()
	switch errno {
	case 0:
	case unix.EAGAIN:
		return 0, src, dst, 0, ErrWouldBlock
	case unix.EINTR:
		return 0, src, dst, 0, errSkip
	default:
		return 0, src, dst, 0, os.NewSyscallError("recvmsg", errno)
	}
	n = min(int(r), len(buf))
	if !c.ipv6 {
		return c.strip4(buf, n)
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&from[0]))
	src = netip.AddrFrom16(sa.Addr)
	ttl, dst = parseControl6(oob[:msg.Controllen])
	return n, src, dst, ttl, nil
}

// strip4 removes the IPv4 header a raw socket delivers, taking the source,
// destination and TTL from it.
func (c *Conn) strip4(buf []byte, n int) (int, netip.Addr, netip.Addr, int, error) {
	if n < 20 || buf[0]>>4 != 4 {
		return 0, netip.Addr{}, netip.Addr{}, 0, errSkip
	}
	ihl := int(buf[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(buf[2:4]))
	if ihl < 20 || ihl > n {
		return 0, netip.Addr{}, netip.Addr{}, 0, errSkip
	}
	end := n
	if total >= ihl && total < n {
		end = total
	}
	ttl := int(buf[8])
	src := netip.AddrFrom4([4]byte(buf[12:16]))
	dst := netip.AddrFrom4([4]byte(buf[16:20]))
	return copy(buf, buf[ihl:end]), src, dst, ttl, nil
}

// parseControl6 finds the hop limit and the destination in the control
// messages of an IPv6 datagram.
func parseControl6(oob []byte) (hopLimit int, dst netip.Addr) {
	for len(oob) >= unix.CmsgLen(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			hopLimit = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			dst = netip.AddrFrom16([16]byte(data[:16]))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return hopLimit, dst
}

// ReadPacket is TryReadPacket that waits for a message, until the deadline
// set with SetReadDeadline (os.ErrDeadlineExceeded) or Close (an error
// matching net.ErrClosed).
func (c *Conn) ReadPacket(buf []byte) (n int, src, dst netip.Addr, ttl int, err error) {
	for {
		n, src, dst, ttl, err = c.TryReadPacket(buf)
		if err != ErrWouldBlock {
			return n, src, dst, ttl, err
		}
		if err := c.wait(); err != nil {
			return 0, src, dst, 0, err
		}
	}
}

// wait blocks until a message is queued, the deadline passes or the Conn
// closes. It registers a duplicate of the socket with Go's poller for the
// wait only (closing the duplicate removes it from the poller).
func (c *Conn) wait() error {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return net.ErrClosed
	}
	dfd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dfd), "vrrp-socket")
	c.waiter.Store(f)
	defer func() {
		c.waiter.Store(nil)
		f.Close()
	}()
	if c.closing.Load() {
		return net.ErrClosed
	}
	if d := c.deadline.Load(); d != 0 {
		if err := f.SetReadDeadline(time.Unix(0, d)); err != nil {
			return err
		}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var peek [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN // false: wait for the poller
	})
	if c.closing.Load() {
		return net.ErrClosed
	}
	return err
}

// WritePacket sends msg (a complete VRRP message; for IPv6 the kernel fills
// in the checksum) to the VRRP group from the source address. It never
// blocks: a full socket buffer is an error (EAGAIN), as is a link that is
// down or a source the interface lacks.
func (c *Conn) WritePacket(msg []byte) error {
	var iov [2]unix.Iovec
	hdr := unix.Msghdr{Name: &c.dst[0], Namelen: c.dstLen, Iov: &iov[0], Iovlen: 1}
	if c.ipv6 {
		iov[0].Base = unsafe.SliceData(msg)
		iov[0].SetLen(len(msg))
		hdr.Control = &c.oob[0]
		hdr.SetControllen(len(c.oob))
	} else {
		iov[0].Base = &c.hdr4[0]
		iov[0].SetLen(len(c.hdr4))
		iov[1].Base = unsafe.SliceData(msg)
		iov[1].SetLen(len(msg))
		hdr.Iovlen = 2
	}
	return c.sendmsg(&hdr, c.group)
}

// sendmsg sends hdr on the socket, to (the destination) named in the error.
func (c *Conn) sendmsg(hdr *unix.Msghdr, to netip.Addr) error {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return net.ErrClosed
	}
	// A raw system call: it cannot block on a non-blocking socket, and the
	// runtime's bookkeeping for ordinary ones wakes its monitor thread,
	// which at 10 ms adverts costs more than the send itself.
	_, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(c.fd), uintptr(unsafe.Pointer(hdr)), unix.MSG_DONTWAIT)
	c.mu.Unlock()
	if errno != 0 {
		return fmt.Errorf("vrrpnet: send to %v on %s from %v: %w", to, c.ifi.Name, c.source, os.NewSyscallError("sendmsg", errno))
	}
	return nil
}

// WritePacketTo sends msg to the unicast address to instead of the group
// (unicast VRRP, keepalived's unicast_peer): from the same source, with
// TTL / hop limit 255, without MSG_DONTROUTE, so a peer behind a router is
// reached (the receiver's plan decides whether a lower TTL counts). The
// caller computes the IPv4 checksum for to (vrrp.AppendReaddressed); for
// IPv6 the kernel does. An IPv4 advert carries the Conn's header with to
// as destination; the interface is the Conn's (SO_BINDTODEVICE), as is a
// link-local IPv6 destination's. It never blocks.
func (c *Conn) WritePacketTo(msg []byte, to netip.Addr) error {
	to = to.Unmap().WithZone("")
	if !to.IsValid() || to.Is4() == c.ipv6 {
		return fmt.Errorf("vrrpnet: send on %s: destination %v is not of the socket's family", c.ifi.Name, to)
	}
	var dst [unix.SizeofSockaddrInet6]byte
	var iov [2]unix.Iovec
	hdr := unix.Msghdr{Name: &dst[0], Iov: &iov[0], Iovlen: 1}
	h4 := c.hdr4
	if c.ipv6 {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&dst[0]))
		sa.Family, sa.Addr, sa.Scope_id = unix.AF_INET6, to.As16(), uint32(c.ifi.Index)
		hdr.Namelen = unix.SizeofSockaddrInet6
		iov[0].Base = unsafe.SliceData(msg)
		iov[0].SetLen(len(msg))
		hdr.Control = &c.oob[0]
		hdr.SetControllen(len(c.oob))
	} else {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&dst[0]))
		sa.Family, sa.Addr = unix.AF_INET, to.As4()
		hdr.Namelen = unix.SizeofSockaddrInet4
		copy(h4[16:20], sa.Addr[:])
		iov[0].Base = &h4[0]
		iov[0].SetLen(len(h4))
		iov[1].Base = unsafe.SliceData(msg)
		iov[1].SetLen(len(msg))
		hdr.Iovlen = 2
	}
	return c.sendmsg(&hdr, to)
}

// SetReadDeadline makes a blocked or future ReadPacket return
// os.ErrDeadlineExceeded at t; the zero time removes the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.deadline.Store(d)
	if f := c.waiter.Load(); f != nil {
		return f.SetReadDeadline(t)
	}
	return nil
}

// Close leaves the group and closes the socket; a blocked ReadPacket
// returns.
func (c *Conn) Close() error {
	if c.closing.Swap(true) {
		return nil
	}
	if f := c.waiter.Load(); f != nil {
		f.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := unix.Close(c.fd) // leaving the socket leaves its groups
	c.fd = -1
	return err
}
