package vrrpnet

import (
	"bytes"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzStrip4 feeds arbitrary datagrams to the IPv4 header parser: it never
// panics, and whatever it accepts is the payload the header delimits, with
// the header's addresses and TTL.
func FuzzStrip4(f *testing.F) {
	hdr := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18}
	f.Add(append(hdr, 0x31, 1, 100, 1, 0, 100, 0, 0))
	f.Add(append([]byte{0x46, 0, 0, 32, 0, 0, 0, 0, 64, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18, 1, 1, 1, 1}, 0x31, 1, 100, 1, 0, 100, 0, 0))
	f.Add(hdr[:10])
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &Conn{}
		buf := bytes.Clone(in)
		n, src, dst, ttl, err := c.strip4(buf, len(buf))
		if err != nil {
			return
		}
		ihl := int(in[0]&0x0f) * 4
		if ihl < 20 || ihl > len(in) || n > len(in)-ihl || !bytes.Equal(buf[:n], in[ihl:ihl+n]) {
			t.Fatalf("accepted %x: payload %x (ihl %d)", in, buf[:n], ihl)
		}
		if src != netip.AddrFrom4([4]byte(in[12:16])) || dst != netip.AddrFrom4([4]byte(in[16:20])) || ttl != int(in[8]) {
			t.Fatalf("accepted %x: src %v dst %v ttl %d", in, src, dst, ttl)
		}
	})
}

// FuzzParseControl6 feeds arbitrary control data to the IPv6 control
// message parser: it never panics or reads past the buffer.
func FuzzParseControl6(f *testing.F) {
	oob := make([]byte, unix.CmsgSpace(4)+unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	put := func(off, typ, n int) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		h.Level, h.Type = unix.IPPROTO_IPV6, int32(typ)
		h.SetLen(unix.CmsgLen(n))
	}
	put(0, unix.IPV6_HOPLIMIT, 4)
	oob[unix.CmsgLen(0)] = 255
	put(unix.CmsgSpace(4), unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	oob[unix.CmsgSpace(4)+unix.CmsgLen(0)] = 0xff
	f.Add(oob)
	f.Add(oob[:5])
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 0 && len(in)%8 != 0 {
			in = append(in, make([]byte, 8-len(in)%8)...) // the kernel aligns control data
		}
		buf := make([]byte, len(in), len(in)+8)
		copy(buf, in)
		parseControl6(buf)
	})
}
