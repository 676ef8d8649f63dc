package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	v4src = netip.MustParseAddr("192.0.2.11")
	v6src = netip.MustParseAddr("fe80::11")
)

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// onesComplement folds a list of 16-bit words the way RFC 1071 describes,
// written out independently of the package's checksum code.
func onesComplement(words ...uint16) uint16 {
	var sum uint32
	for _, w := range words {
		sum += uint32(w)
		if sum > 0xffff {
			sum = sum - 0x10000 + 1 // end-around carry
		}
	}
	return ^uint16(sum)
}

// TestKnownAnswerIPv4 checks both IPv4 checksum forms against a message
// whose checksum is worked out word by word here.
func TestKnownAnswerIPv4(t *testing.T) {
	// Version 3, type 1 | VRID 51 | priority 100 | 1 address |
	// interval 100 cs | checksum | 192.0.2.100
	msgWords := []uint16{
		0x31<<8 | 51, // version 3 type 1 | VRID 51 (0x33)
		100<<8 | 1,   // priority 100 (0x64) | count 1
		0x0064,       // reserved 0 | interval 100 cs
		0x0000,       // checksum field zero while summing
		192<<8 | 0,   // 192.0.
		2<<8 | 100,   // 2.100
	}
	messageOnly := onesComplement(msgWords...)
	// keepalived / FRR: the IPv4 pseudo-header in front: source 192.0.2.11,
	// destination 224.0.0.18, zero, protocol 112, VRRP length 12.
	pseudo := []uint16{192<<8 | 0, 2<<8 | 11, 224<<8 | 0, 0<<8 | 18, 0x0070, 12}
	withPseudo := onesComplement(append(pseudo, msgWords...)...)
	// Worked by hand: the message words sum to 0x157fc, folded 0x57fd,
	// complemented 0xa802; the pseudo-header adds 0x1a299 more.
	if messageOnly != 0xa802 || withPseudo != 0x0568 {
		t.Fatalf("hand computation disagrees with itself: %#04x %#04x", messageOnly, withPseudo)
	}

	for _, tc := range []struct {
		form ChecksumForm
		sum  uint16
	}{{ChecksumRFC9568, messageOnly}, {ChecksumPseudoHeader, withPseudo}} {
		a := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, MaxAdvertInterval: 100, Addresses: addrs("192.0.2.100")}
		got, err := a.Marshal(v4src, GroupIPv4, tc.form)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte{0x31, 51, 100, 1, 0x00, 100, byte(tc.sum >> 8), byte(tc.sum), 192, 0, 2, 100}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%v: encoding (-want +got):\n%s", tc.form, diff)
		}
		if a.Checksum != tc.sum {
			t.Errorf("%v: Advert.Checksum = %#04x, want %#04x", tc.form, a.Checksum, tc.sum)
		}
		back, form, err := Parse(want, v4src, GroupIPv4)
		if err != nil {
			t.Fatalf("%v: Parse: %v", tc.form, err)
		}
		if form != tc.form {
			t.Errorf("Parse reported form %v, want %v", form, tc.form)
		}
		if diff := cmp.Diff(a, back, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
			t.Errorf("%v: Parse (-want +got):\n%s", tc.form, diff)
		}
	}
}

func TestKnownAnswerIPv6(t *testing.T) {
	a := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, MaxAdvertInterval: 100, Addresses: addrs("fe80::1", "2001:db8::100")}
	got, err := a.Marshal(v6src, GroupIPv6, ChecksumIPv6)
	if err != nil {
		t.Fatal(err)
	}
	// Words: header, then both addresses; pseudo-header: source, group,
	// 32-bit length 40, three zero bytes and next header 112.
	words := []uint16{0x3133, 0x6402, 0x0064, 0, 0xfe80, 0, 0, 0, 0, 0, 0, 1, 0x2001, 0x0db8, 0, 0, 0, 0, 0, 0x0100,
		0xfe80, 0, 0, 0, 0, 0, 0, 0x11, 0xff02, 0, 0, 0, 0, 0, 0, 0x12, 0, 40, 0, 112}
	sum := onesComplement(words...)
	if sum != 0x3eec {
		t.Fatalf("hand computation: %#04x", sum)
	}
	if c := binary.BigEndian.Uint16(got[6:]); c != sum {
		t.Errorf("checksum %#04x, want %#04x", c, sum)
	}
	if len(got) != 40 {
		t.Errorf("length %d, want 40", len(got))
	}
	_, form, err := Parse(got, v6src, GroupIPv6)
	if err != nil || form != ChecksumIPv6 {
		t.Errorf("Parse: form %v err %v", form, err)
	}
	// Destination left unknown: the group is assumed.
	if _, _, err := Parse(got, v6src, netip.Addr{}); err != nil {
		t.Errorf("Parse without destination: %v", err)
	}
}

// frrForm is a pseudo-header checksum that names 224.0.0.18 although the
// message went to a unicast peer, as FRR does.
func TestParseFRRUnicastPseudoHeader(t *testing.T) {
	a := &Advert{Version: 3, Type: 1, VRID: 9, Priority: 120, MaxAdvertInterval: 5, Addresses: addrs("192.0.2.100")}
	b, err := a.Marshal(v4src, GroupIPv4, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	_, form, err := Parse(b, v4src, netip.MustParseAddr("192.0.2.12"))
	if err != nil || form != ChecksumPseudoHeader {
		t.Fatalf("form %v err %v", form, err)
	}
}

// valid returns a good message for the family of src.
func valid(t testing.TB, src netip.Addr) []byte {
	a := &Advert{Version: 3, Type: 1, VRID: 7, Priority: 100, MaxAdvertInterval: 100, Addresses: addrs("192.0.2.100")}
	dst, form := GroupIPv4, ChecksumRFC9568
	if src.Is6() {
		a.Addresses = addrs("fe80::1")
		dst, form = GroupIPv6, ChecksumIPv6
	}
	b, err := a.Marshal(src, dst, form)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reseal recomputes the message-only checksum after a test edited b.
func reseal(b []byte) []byte {
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint16(b[6:], finishChecksum(sumWords(0, b)))
	return b
}

func TestParseErrors(t *testing.T) {
	edit := func(src netip.Addr, f func(b []byte) []byte) []byte { return f(valid(t, src)) }
	v2 := reseal([]byte{0x21, 7, 100, 1, 0, 1, 0, 0, 192, 0, 2, 100, 0, 0, 0, 0, 0, 0, 0, 0})
	for _, tc := range []struct {
		name   string
		data   []byte
		src    netip.Addr
		dst    netip.Addr
		reason DropReason
		isV2   bool
	}{
		{"empty", nil, v4src, GroupIPv4, DropLength, false},
		{"short header", []byte{0x31, 7, 100}, v4src, GroupIPv4, DropLength, false},
		{"version 2", v2, v4src, GroupIPv4, DropVersion, true},
		{"version 4", edit(v4src, func(b []byte) []byte { b[0] = 0x41; return reseal(b) }), v4src, GroupIPv4, DropVersion, false},
		{"version 0", edit(v4src, func(b []byte) []byte { b[0] = 0x01; return reseal(b) }), v4src, GroupIPv4, DropVersion, false},
		{"type 2", edit(v4src, func(b []byte) []byte { b[0] = 0x32; return reseal(b) }), v4src, GroupIPv4, DropType, false},
		{"count 0", edit(v4src, func(b []byte) []byte { b[3] = 0; return reseal(b[:8]) }), v4src, GroupIPv4, DropAddressCount, false},
		{"count says 2, one address", edit(v4src, func(b []byte) []byte { b[3] = 2; return reseal(b) }), v4src, GroupIPv4, DropLength, false},
		{"trailing bytes", edit(v4src, func(b []byte) []byte { return reseal(append(b, 0, 0, 0, 0)) }), v4src, GroupIPv4, DropLength, false},
		{"truncated address", edit(v4src, func(b []byte) []byte { return b[:10] }), v4src, GroupIPv4, DropLength, false},
		{"IPv4 message from IPv6 source", valid(t, v4src), v6src, GroupIPv6, DropLength, false},
		{"bad checksum v4", edit(v4src, func(b []byte) []byte { b[7] ^= 0xff; return b }), v4src, GroupIPv4, DropChecksum, false},
		{"bad checksum v6", edit(v6src, func(b []byte) []byte { b[7] ^= 0x01; return b }), v6src, GroupIPv6, DropChecksum, false},
		{"v6 message-only checksum", edit(v6src, func(b []byte) []byte { return reseal(b) }), v6src, GroupIPv6, DropChecksum, false},
		{"v4 pseudo-header with wrong source", func() []byte {
			a := &Advert{Version: 3, Type: 1, VRID: 7, Priority: 100, MaxAdvertInterval: 100, Addresses: addrs("192.0.2.100")}
			b, _ := a.Marshal(netip.MustParseAddr("192.0.2.99"), GroupIPv4, ChecksumPseudoHeader)
			return b
		}(), v4src, GroupIPv4, DropChecksum, false},
		{"interval 0", edit(v4src, func(b []byte) []byte { b[4], b[5] = 0, 0; return reseal(b) }), v4src, GroupIPv4, DropInterval, false},
		{"interval 0 with reserved bits", edit(v4src, func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return reseal(b) }), v4src, GroupIPv4, DropInterval, false},
		{"no source", valid(t, v4src), netip.Addr{}, GroupIPv4, DropFamily, false},
		{"mixed families", valid(t, v4src), v4src, GroupIPv6, DropFamily, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, err := Parse(tc.data, tc.src, tc.dst)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Reason != tc.reason {
				t.Errorf("reason %q, want %q (%v)", pe.Reason, tc.reason, err)
			}
			if got := errors.Is(err, ErrVersion2); got != tc.isV2 {
				t.Errorf("errors.Is(err, ErrVersion2) = %v", got)
			}
			if tc.isV2 {
				want := &Advert{Version: 2, Type: 1, VRID: 7, Priority: 100, MaxAdvertInterval: 100, Checksum: binary.BigEndian.Uint16(tc.data[6:]), Addresses: addrs("192.0.2.100")}
				if diff := cmp.Diff(want, a, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
					t.Errorf("v2 report (-want +got):\n%s", diff)
				}
			} else if a != nil {
				t.Errorf("Advert returned with an error: %+v", a)
			}
			if err.Error() == "" || pe.Msg == "" {
				t.Error("error without a message")
			}
		})
	}
}

func TestParseIgnoresReservedBits(t *testing.T) {
	b := valid(t, v4src)
	b[4] |= 0xa0
	a, _, err := Parse(reseal(b), v4src, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxAdvertInterval != 100 {
		t.Errorf("interval %d, want 100", a.MaxAdvertInterval)
	}
}

func TestMarshalErrors(t *testing.T) {
	good := func() *Advert {
		return &Advert{Version: 3, Type: 1, VRID: 7, Priority: 100, MaxAdvertInterval: 100, Addresses: addrs("192.0.2.100")}
	}
	for _, tc := range []struct {
		name     string
		edit     func(a *Advert)
		src, dst netip.Addr
		form     ChecksumForm
	}{
		{"version 2", func(a *Advert) { a.Version = 2 }, v4src, GroupIPv4, ChecksumRFC9568},
		{"type 0", func(a *Advert) { a.Type = 0 }, v4src, GroupIPv4, ChecksumRFC9568},
		{"vrid 0", func(a *Advert) { a.VRID = 0 }, v4src, GroupIPv4, ChecksumRFC9568},
		{"interval 0", func(a *Advert) { a.MaxAdvertInterval = 0 }, v4src, GroupIPv4, ChecksumRFC9568},
		{"interval 4096", func(a *Advert) { a.MaxAdvertInterval = 4096 }, v4src, GroupIPv4, ChecksumRFC9568},
		{"no addresses", func(a *Advert) { a.Addresses = nil }, v4src, GroupIPv4, ChecksumRFC9568},
		{"256 addresses", func(a *Advert) { a.Addresses = make([]netip.Addr, 256) }, v4src, GroupIPv4, ChecksumRFC9568},
		{"v6 address in v4 advert", func(a *Advert) { a.Addresses = addrs("2001:db8::1") }, v4src, GroupIPv4, ChecksumRFC9568},
		{"invalid address", func(a *Advert) { a.Addresses = []netip.Addr{{}} }, v4src, GroupIPv4, ChecksumRFC9568},
		{"ipv6 form on v4", func(a *Advert) {}, v4src, GroupIPv4, ChecksumIPv6},
		{"no form on v4", func(a *Advert) {}, v4src, GroupIPv4, 0},
		{"v4 form on v6", func(a *Advert) { a.Addresses = addrs("fe80::1") }, v6src, GroupIPv6, ChecksumPseudoHeader},
		{"mixed families", func(a *Advert) {}, v4src, GroupIPv6, ChecksumRFC9568},
		{"no source", func(a *Advert) {}, netip.Addr{}, GroupIPv4, ChecksumRFC9568},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good()
			tc.edit(a)
			if b, err := a.Marshal(tc.src, tc.dst, tc.form); err == nil {
				t.Fatalf("no error, encoded % x", b)
			}
		})
	}
}

func TestRoundTripTable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		form     ChecksumForm
	}{
		{"v4 message-only", Advert{Version: 3, Type: 1, VRID: 1, Priority: 255, MaxAdvertInterval: 1, Addresses: addrs("192.0.2.1", "198.51.100.1")}, v4src, GroupIPv4, ChecksumRFC9568},
		{"v4 pseudo-header", Advert{Version: 3, Type: 1, VRID: 255, Priority: 0, MaxAdvertInterval: 4095, Addresses: addrs("203.0.113.9")}, v4src, GroupIPv4, ChecksumPseudoHeader},
		{"v4-mapped source", Advert{Version: 3, Type: 1, VRID: 3, Priority: 1, MaxAdvertInterval: 10, Addresses: addrs("192.0.2.1")}, netip.MustParseAddr("::ffff:192.0.2.11"), GroupIPv4, ChecksumPseudoHeader},
		{"v6", Advert{Version: 3, Type: 1, VRID: 200, Priority: 150, MaxAdvertInterval: 100, Addresses: addrs("fe80::1", "2001:db8::1", "2001:db8:1::1")}, v6src, GroupIPv6, ChecksumIPv6},
		{"v6 form zero", Advert{Version: 3, Type: 1, VRID: 200, Priority: 150, MaxAdvertInterval: 100, Addresses: addrs("fe80::1")}, v6src, GroupIPv6, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			b, err := a.Marshal(tc.src, tc.dst, tc.form)
			if err != nil {
				t.Fatal(err)
			}
			got, form, err := Parse(b, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			wantForm := tc.form
			if wantForm == 0 {
				wantForm = ChecksumIPv6
			}
			if form != wantForm {
				t.Errorf("form %v, want %v", form, wantForm)
			}
			if diff := cmp.Diff(&a, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("(-sent +parsed):\n%s", diff)
			}
		})
	}
}
