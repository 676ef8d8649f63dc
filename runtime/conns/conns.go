// Package conns ends the TCP connections of an address the node no longer
// holds, as `ss -K src ADDR` does: sock_diag's SOCK_DESTROY for every TCP
// socket whose local address it is, listeners excepted.
//
// Why: when a VIP moves, the connections its clients had with the old
// holder are dead (their segments now reach the new holder), but the old
// holder's sockets stay open until the application or a timeout closes
// them, idle ones for ever. After a split brain (two Actives, both serving
// parts of one client's traffic) such a stale socket can match the 4-tuple
// of a later connection of the same client; when its host becomes Active
// again it answers that connection's segments with out-of-window ACKs
// instead of the reset the client needs, and the client hangs. Ending the
// sockets when the address goes leaves nothing to match.
//
// Calls act in the network namespace of the calling thread; the kernel
// needs CONFIG_INET_DIAG_DESTROY (Debian's and most distributions' kernels
// have it) and CAP_NET_ADMIN.
package conns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// End destroys every TCP socket whose local address is addr (an IPv4
// address also as IPv4-mapped IPv6, which dual-stack listeners use), in
// every state but LISTEN, and returns how many it ended. The kernel sends
// the peer a reset where the state calls for one. Sockets that close
// meanwhile are not errors.
func End(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	families := []uint8{unix.AF_INET6}
	if addr.Is4() {
		families = append(families, unix.AF_INET)
	}
	ended := 0
	var errs []error
	for _, fam := range families {
		socks, err := netlink.SocketDiagTCP(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			errs = append(errs, fmt.Errorf("conns: list TCP sockets: %w", err))
			continue
		}
		for _, s := range socks {
			local, ok := netip.AddrFromSlice(s.ID.Source)
			if !ok || local.Unmap() != addr || s.State == netlink.TCP_LISTEN {
				continue
			}
			switch err := destroy(s); {
			case err == nil:
				ended++
			case errors.Is(err, unix.ENOENT):
			default:
				errs = append(errs, fmt.Errorf("conns: end %v:%d - %v:%d: %w", local, s.ID.SourcePort, s.ID.Destination, s.ID.DestinationPort, err))
			}
		}
	}
	return ended, errors.Join(errs...)
}

// destroy sends SOCK_DESTROY for exactly the socket s (its cookie too, so
// a socket that reused the 4-tuple meanwhile is left alone).
func destroy(s *netlink.Socket) error {
	req := nl.NewNetlinkRequest(nl.SOCK_DESTROY, unix.NLM_F_ACK)
	req.AddData(diagRequest{s})
	_, err := req.Execute(unix.NETLINK_INET_DIAG, 0)
	return err
}

// diagRequest is struct inet_diag_req_v2 naming one socket.
type diagRequest struct{ s *netlink.Socket }

func (r diagRequest) Len() int { return 56 }

func (r diagRequest) Serialize() []byte {
	s := r.s
	b := make([]byte, 56)
	b[0] = s.Family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], 0xfff) // every state
	id := b[8:]
	binary.BigEndian.PutUint16(id[0:], s.ID.SourcePort)
	binary.BigEndian.PutUint16(id[2:], s.ID.DestinationPort)
	putAddr(id[4:20], s.Family, s.ID.Source)
	putAddr(id[20:36], s.Family, s.ID.Destination)
	binary.NativeEndian.PutUint32(id[36:], s.ID.Interface)
	binary.NativeEndian.PutUint32(id[40:], s.ID.Cookie[0])
	binary.NativeEndian.PutUint32(id[44:], s.ID.Cookie[1])
	return b
}

func putAddr(dst []byte, family uint8, ip []byte) {
	a, _ := netip.AddrFromSlice(ip)
	if family == unix.AF_INET {
		v4 := a.Unmap().As4()
		copy(dst, v4[:])
		return
	}
	v6 := a.As16()
	copy(dst, v6[:])
}
