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
// The kernel does the selecting: the dump request carries the state mask
// (everything but LISTEN) and an inet_diag bytecode filter on the local
// address, so a director whose proxy holds a hundred thousand other
// connections answers with the few that match, and End costs the agent's
// loop the kernel's walk of its socket table, not the decoding of every
// socket in it.
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

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// inet_diag_req_v2 and the inet_diag_sockid inside it and inside
	// every inet_diag_msg of the answer (linux/inet_diag.h).
	reqLen     = 56
	sockIDOff  = 8  // in the request
	msgIDOff   = 4  // in an answer
	sockIDLen  = 48 // ports, two 16-byte addresses, interface, cookie
	minMsgLen  = msgIDOff + sockIDLen
	attrFilter = 1 // INET_DIAG_REQ_BYTECODE

	bcSourceCond = 7 // INET_DIAG_BC_S_COND
	tcpListen    = 10
	everyState   = 0xfff
)

// End destroys every TCP socket whose local address is addr (an IPv4
// address also as IPv4-mapped IPv6, which dual-stack listeners use), in
// every state but LISTEN, and returns how many it ended. The kernel sends
// the peer a reset where the state calls for one. Sockets that close
// meanwhile are not errors.
func End(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	sock, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_INET_DIAG)
	if err != nil {
		return 0, fmt.Errorf("conns: open a sock_diag socket: %w", err)
	}
	defer sock.Close()
	tv := nl.SocketTimeoutTv
	sock.SetSendTimeout(&tv)
	sock.SetReceiveTimeout(&tv)
	handle := map[int]*nl.SocketHandle{unix.NETLINK_INET_DIAG: {Socket: sock}}

	families := []uint8{unix.AF_INET6}
	if addr.Is4() {
		families = append(families, unix.AF_INET)
	}
	ended := 0
	var errs []error
	for _, fam := range families {
		ids, err := list(handle, fam, addr)
		if err != nil {
			errs = append(errs, err)
		}
		for _, id := range ids {
			switch err := destroy(handle, fam, id); {
			case err == nil:
				ended++
			case errors.Is(err, unix.ENOENT):
			default:
				errs = append(errs, fmt.Errorf("conns: end %s: %w", describe(fam, id), err))
			}
		}
	}
	return ended, errors.Join(errs...)
}

// sockID is an inet_diag_sockid as the kernel sent it: handed back
// unchanged, it names exactly that socket (its cookie too, so a socket
// that reused the 4-tuple meanwhile is left alone).
type sockID [sockIDLen]byte

// list dumps the non-listening TCP sockets of family fam whose local
// address is addr, the kernel filtering.
func list(handle map[int]*nl.SocketHandle, fam uint8, addr netip.Addr) ([]sockID, error) {
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
	req.Sockets = handle
	req.AddData(request{family: fam, states: everyState &^ (1 << tcpListen)})
	req.AddData(nl.NewRtAttr(attrFilter, sourceFilter(addr)))
	var ids []sockID
	err := req.ExecuteIter(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY, func(msg []byte) bool {
		if len(msg) >= minMsgLen {
			ids = append(ids, sockID(msg[msgIDOff:minMsgLen]))
		}
		return true
	})
	switch {
	case errors.Is(err, nl.ErrDumpInterrupted):
		// The table changed during the dump: what was listed is still
		// worth ending; a socket missed was opened meanwhile.
		return ids, nil
	case err != nil:
		return ids, fmt.Errorf("conns: list TCP sockets (family %d): %w", fam, err)
	}
	return ids, nil
}

// sourceFilter is inet_diag bytecode with one S_COND op: local address
// equal to addr (full prefix), any port. A match steps exactly to the end
// of the program (accept); a miss steps 4 bytes past it (reject). An IPv4
// condition also matches IPv4-mapped addresses of AF_INET6 sockets.
func sourceFilter(addr netip.Addr) []byte {
	raw := addr.AsSlice()
	fam := byte(unix.AF_INET6)
	if addr.Is4() {
		fam = unix.AF_INET
	}
	opLen := 4 + 8 + len(raw) // op, hostcond, address
	b := make([]byte, opLen)
	b[0] = bcSourceCond
	b[1] = byte(opLen)                                    // yes
	binary.NativeEndian.PutUint16(b[2:], uint16(opLen+4)) // no
	b[4] = fam
	b[5] = byte(len(raw) * 8)                        // prefix length
	binary.NativeEndian.PutUint32(b[8:], 0xffffffff) // port -1: any
	copy(b[12:], raw)
	return b
}

// destroy sends SOCK_DESTROY for exactly the socket id and waits for the
// kernel's answer.
func destroy(handle map[int]*nl.SocketHandle, fam uint8, id sockID) error {
	req := nl.NewNetlinkRequest(nl.SOCK_DESTROY, unix.NLM_F_ACK)
	req.Sockets = handle
	req.AddData(request{family: fam, states: everyState, id: id})
	return req.ExecuteIter(unix.NETLINK_INET_DIAG, 0, func([]byte) bool { return true })
}

// request is struct inet_diag_req_v2 for TCP.
type request struct {
	family uint8
	states uint32
	id     sockID
}

func (r request) Len() int { return reqLen }

func (r request) Serialize() []byte {
	b := make([]byte, reqLen)
	b[0] = r.family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], r.states)
	copy(b[sockIDOff:], r.id[:])
	return b
}

// describe names a socket in an error: local and remote address and port.
func describe(fam uint8, id sockID) string {
	n := 16
	if fam == unix.AF_INET {
		n = 4
	}
	src, _ := netip.AddrFromSlice(id[4 : 4+n])
	dst, _ := netip.AddrFromSlice(id[20 : 20+n])
	return fmt.Sprintf("%v - %v",
		netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(id[0:])),
		netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(id[2:])))
}
