package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Wire constants of RFC 9568.
const (
	// ProtocolNumber is the IP protocol number of VRRP.
	ProtocolNumber = 112
	// HeaderLen is the fixed part of a VRRPv3 message before the addresses.
	HeaderLen = 8
	// TypeAdvertisement is the only VRRP message type.
	TypeAdvertisement = 1
	// Version3 is the version this package speaks.
	Version3 = 3
	// MaxInterval is the largest Max Advertise Interval (12 bits, centiseconds).
	MaxInterval = 0x0fff
	// RequiredTTL is the TTL / hop limit of every VRRP message.
	RequiredTTL = 255
)

// Multicast groups adverts are sent to.
var (
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupIPv6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
)

func addrLen(is4 bool) int {
	if is4 {
		return 4
	}
	return 16
}

// Marshal encodes a VRRPv3 advertisement sent from src to dst and stores the
// checksum it computed in a.Checksum. For IPv4, form picks the checksum form
// (ChecksumRFC9568 or ChecksumPseudoHeader); for IPv6 it must be
// ChecksumIPv6 or zero.
func (a *Advert) Marshal(src, dst netip.Addr, form ChecksumForm) ([]byte, error) {
	return a.AppendMarshal(nil, src, dst, form)
}

// AppendMarshal is Marshal appending to b, for callers that reuse buffers.
func (a *Advert) AppendMarshal(b []byte, src, dst netip.Addr, form ChecksumForm) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() {
		return b, fmt.Errorf("vrrp: marshal: source %v and destination %v must both be set", src, dst)
	}
	is4 := src.Is4()
	if dst.Is4() != is4 {
		return b, fmt.Errorf("vrrp: marshal: source %v and destination %v are of different families", src, dst)
	}
	switch {
	case is4 && form != ChecksumRFC9568 && form != ChecksumPseudoHeader:
		return b, fmt.Errorf("vrrp: marshal: checksum form %v is not an IPv4 form", form)
	case !is4 && form != ChecksumIPv6 && form != 0:
		return b, fmt.Errorf("vrrp: marshal: checksum form %v is not the IPv6 form", form)
	}
	if a.Version != Version3 {
		return b, fmt.Errorf("vrrp: marshal: version %d (only 3 is sent)", a.Version)
	}
	if a.Type != TypeAdvertisement {
		return b, fmt.Errorf("vrrp: marshal: type %d (only 1, ADVERTISEMENT, exists)", a.Type)
	}
	if a.VRID == 0 {
		return b, fmt.Errorf("vrrp: marshal: VRID 0 is invalid (1..255)")
	}
	if a.MaxAdvertInterval == 0 || a.MaxAdvertInterval > MaxInterval {
		return b, fmt.Errorf("vrrp: marshal: max advert interval %d cs outside 1..%d", a.MaxAdvertInterval, MaxInterval)
	}
	if n := len(a.Addresses); n == 0 || n > 255 {
		return b, fmt.Errorf("vrrp: marshal: %d addresses (1..255 fit the count field)", n)
	}
	for i, addr := range a.Addresses {
		if !addr.IsValid() || (is4 && !addr.Unmap().Is4()) || (!is4 && !addr.Is6()) {
			return b, fmt.Errorf("vrrp: marshal: address %d (%v) is not of the family of source %v", i, addr, src)
		}
	}

	start := len(b)
	b = slices.Grow(b, HeaderLen+len(a.Addresses)*addrLen(is4))
	b = append(b,
		Version3<<4|TypeAdvertisement,
		a.VRID,
		a.Priority,
		uint8(len(a.Addresses)),
		uint8(a.MaxAdvertInterval>>8), // the top nibble is the reserved field, zero
		uint8(a.MaxAdvertInterval),
		0, 0, // checksum
	)
	for _, addr := range a.Addresses {
		if is4 {
			v4 := addr.Unmap().As4()
			b = append(b, v4[:]...)
		} else {
			v6 := addr.As16()
			b = append(b, v6[:]...)
		}
	}
	msg := b[start:]
	var sum uint32
	if form != ChecksumRFC9568 {
		sum = pseudoHeaderSum(src, dst, len(msg))
	}
	a.Checksum = finishChecksum(sumWords(sum, msg))
	binary.BigEndian.PutUint16(msg[6:], a.Checksum)
	return b, nil
}

// Parse decodes a VRRP message received from src for dst (dst may be left
// invalid when unknown; the VRRP group is assumed then). It returns the
// checksum form that matched. Every malformed input gives a *ParseError
// whose Reason is the metric label; for a VRRPv2 message the error wraps
// ErrVersion2 and the returned Advert holds what the v2 header said.
func Parse(b []byte, src, dst netip.Addr) (*Advert, ChecksumForm, error) {
	a := new(Advert)
	form, err := ParseInto(a, b, src, dst)
	if err != nil && a.Version != 2 {
		return nil, 0, err
	}
	return a, form, err
}

// ParseInto is Parse decoding into a caller-owned Advert, reusing its
// Addresses slice. On error *a holds whatever was decoded.
func ParseInto(a *Advert, b []byte, src, dst netip.Addr) (ChecksumForm, error) {
	return parseInto(a, b, src, dst, 0)
}

// parseInto decodes b, whose last trailer bytes are an authentication
// trailer (0: none). The IPv4 checksum covers the message without the
// trailer; the IPv6 one covers the whole payload, as the kernel computes it.
func parseInto(a *Advert, b []byte, src, dst netip.Addr, trailer int) (ChecksumForm, error) {
	*a = Advert{Addresses: a.Addresses[:0]}
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() {
		return 0, parseErr(DropFamily, "source address not set")
	}
	is4 := src.Is4()
	if !dst.IsValid() {
		dst = GroupIPv6
		if is4 {
			dst = GroupIPv4
		}
	}
	if dst.Is4() != is4 {
		return 0, parseErr(DropFamily, "source %v and destination %v are of different families", src, dst)
	}
	if len(b) == 0 {
		return 0, parseErr(DropLength, "empty message")
	}
	a.Version = b[0] >> 4
	a.Type = b[0] & 0x0f
	switch a.Version {
	case Version3:
	case 2:
		parseV2(a, b, is4)
		return 0, &ParseError{Reason: DropVersion, Msg: fmt.Sprintf("VRID %d priority %d from %v", a.VRID, a.Priority, src), Err: ErrVersion2}
	default:
		return 0, parseErr(DropVersion, "version %d", a.Version)
	}
	if len(b) < HeaderLen {
		return 0, parseErr(DropLength, "%d bytes, shorter than the %d-byte header", len(b), HeaderLen)
	}
	if a.Type != TypeAdvertisement {
		return 0, parseErr(DropType, "type %d (only 1, ADVERTISEMENT, exists)", a.Type)
	}
	a.VRID = b[1]
	a.Priority = b[2]
	count := int(b[3])
	a.MaxAdvertInterval = binary.BigEndian.Uint16(b[4:]) & MaxInterval // reserved nibble ignored on receive
	a.Checksum = binary.BigEndian.Uint16(b[6:])
	if count == 0 {
		return 0, parseErr(DropAddressCount, "address count 0 (RFC 9568 §5.2.5, erratum 8299)")
	}
	alen := addrLen(is4)
	if want := HeaderLen + count*alen + trailer; len(b) != want {
		fam := "IPv6"
		if is4 {
			fam = "IPv4"
		}
		return 0, parseErr(DropLength, "%d bytes, want %d for %d %s addresses", len(b), want, count, fam)
	}
	full := b
	b = b[:len(b)-trailer]

	form := ChecksumIPv6
	if is4 {
		switch {
		case finishChecksum(sumWords(0, b)) == 0:
			form = ChecksumRFC9568
		case finishChecksum(sumWords(pseudoHeaderSum(src, dst, len(b)), b)) == 0:
			form = ChecksumPseudoHeader
		// FRR puts the VRRP group in the pseudo-header whatever the
		// destination was (e.g. unicast peers).
		case dst != GroupIPv4 && finishChecksum(sumWords(pseudoHeaderSum(src, GroupIPv4, len(b)), b)) == 0:
			form = ChecksumPseudoHeader
		default:
			return 0, parseErr(DropChecksum, "checksum %#04x matches neither the message-only (%#04x) nor the pseudo-header (%#04x) form",
				a.Checksum, expectedChecksum(b, 0), expectedChecksum(b, pseudoHeaderSum(src, dst, len(b))))
		}
	} else if finishChecksum(sumWords(pseudoHeaderSum(src, dst, len(full)), full)) != 0 {
		return 0, parseErr(DropChecksum, "checksum %#04x, want %#04x (IPv6 pseudo-header)",
			a.Checksum, expectedChecksum(full, pseudoHeaderSum(src, dst, len(full))))
	}
	if a.MaxAdvertInterval == 0 {
		return form, parseErr(DropInterval, "max advert interval 0 (RFC 9568 erratum 8301)")
	}
	if a.VRID == 0 {
		// Marshal refuses VRID 0 too: what parses must encode again.
		return form, parseErr(DropVRID, "VRID 0 is invalid (1..255)")
	}
	a.Addresses = slices.Grow(a.Addresses, count)
	for off := HeaderLen; off < len(b); off += alen {
		addr, _ := netip.AddrFromSlice(b[off : off+alen])
		a.Addresses = append(a.Addresses, addr)
	}
	return form, nil
}

// setIPv6Checksum recomputes the checksum of an IPv6 payload b (message
// and trailer) sent from src to dst, as the kernel does on send.
func setIPv6Checksum(b []byte, src, dst netip.Addr) {
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint16(b[6:], finishChecksum(sumWords(pseudoHeaderSum(src, dst, len(b)), b)))
}

// parseV2 fills a with what a VRRPv2 header says, for the error report.
func parseV2(a *Advert, b []byte, is4 bool) {
	if len(b) < HeaderLen {
		return
	}
	a.VRID, a.Priority = b[1], b[2]
	a.MaxAdvertInterval = uint16(b[5]) * 100 // v2 counts whole seconds
	a.Checksum = binary.BigEndian.Uint16(b[6:])
	alen := addrLen(is4)
	for i, off := 0, HeaderLen; i < int(b[3]) && off+alen <= len(b); i, off = i+1, off+alen {
		addr, _ := netip.AddrFromSlice(b[off : off+alen])
		a.Addresses = append(a.Addresses, addr)
	}
}

func parseErr(reason DropReason, format string, args ...any) *ParseError {
	return &ParseError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// pseudoHeaderSum is the unfolded one's-complement sum of the IPv4 pseudo-
// header (src, dst, zero, protocol, length) or the IPv6 one (src, dst,
// 32-bit length, 24 zero bits, next header).
func pseudoHeaderSum(src, dst netip.Addr, length int) uint32 {
	var sum uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = sumWords(sum, s[:])
		sum = sumWords(sum, d[:])
	} else {
		s, d := src.As16(), dst.As16()
		sum = sumWords(sum, s[:])
		sum = sumWords(sum, d[:])
	}
	// The protocol and the length land in the low 16-bit words in both
	// forms: IPv4 has 0x00,112 and a 16-bit length, IPv6 a 32-bit length
	// (high word zero for VRRP sizes) and 0,0,0,112.
	return sum + ProtocolNumber + uint32(length)
}

// sumWords adds b as big-endian 16-bit words (odd tail padded with zero).
func sumWords(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func finishChecksum(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// expectedChecksum computes what the checksum field of b should hold.
func expectedChecksum(b []byte, pseudo uint32) uint16 {
	sum := sumWords(pseudo, b[:6])
	return finishChecksum(sumWords(sum, b[8:]))
}
