package vrrp

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var addrComparer = cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

// FuzzParse: any input either parses or gives a *ParseError with a known
// reason; what parses encodes back to a message that parses to the same
// advert with the same checksum form.
func FuzzParse(f *testing.F) {
	f.Add(valid(f, v4src), false)
	f.Add(valid(f, v6src), true)
	f.Add([]byte{0x21, 7, 100, 1, 0, 1, 0, 0, 192, 0, 2, 100, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{0x31, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, ipv6 bool) {
		src, dst, form := v4src, GroupIPv4, ChecksumRFC9568
		if ipv6 {
			src, dst, form = v6src, GroupIPv6, ChecksumIPv6
		}
		a, gotForm, err := Parse(data, src, dst)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == DropNone || pe.Reason >= NumDropReasons {
				t.Fatalf("error %v is not a *ParseError with a known reason", err)
			}
			if (a != nil) != errors.Is(err, ErrVersion2) {
				t.Fatalf("advert %v returned with error %v", a, err)
			}
			return
		}
		if gotForm == ChecksumPseudoHeader {
			form = ChecksumPseudoHeader
		}
		if gotForm != form {
			t.Fatalf("form %v for a %v message", gotForm, form)
		}
		want := *a
		b, err := a.Marshal(src, dst, form)
		if err != nil {
			t.Fatalf("re-encoding a parsed advert: %v", err)
		}
		back, backForm, err := Parse(b, src, dst)
		if err != nil {
			t.Fatalf("parsing the re-encoding: %v", err)
		}
		if backForm != gotForm {
			t.Fatalf("form %v after round trip, was %v", backForm, gotForm)
		}
		// The checksum may differ only when reserved bits were set.
		want.Checksum, back.Checksum = 0, 0
		if diff := cmp.Diff(&want, back, addrComparer); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzRoundTrip: every advert Marshal accepts parses back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(1), uint8(100), uint16(100), uint8(1), []byte{192, 0, 2, 1}, false, false)
	f.Add(uint8(255), uint8(0), uint16(4095), uint8(2), make([]byte, 32), true, true)
	f.Fuzz(func(t *testing.T, vrid, prio uint8, interval uint16, count uint8, raw []byte, ipv6, pseudo bool) {
		src, dst, form, alen := v4src, GroupIPv4, ChecksumRFC9568, 4
		if pseudo {
			form = ChecksumPseudoHeader
		}
		if ipv6 {
			src, dst, form, alen = v6src, GroupIPv6, ChecksumIPv6, 16
		}
		a := &Advert{Version: 3, Type: 1, VRID: vrid, Priority: prio, MaxAdvertInterval: interval}
		for i := 0; i < int(count); i++ {
			chunk := make([]byte, alen)
			if len(raw) > 0 {
				copy(chunk, raw[(i*alen)%len(raw):])
			}
			ad, _ := netip.AddrFromSlice(chunk)
			a.Addresses = append(a.Addresses, ad)
		}
		b, err := a.Marshal(src, dst, form)
		if err != nil {
			if vrid != 0 && interval != 0 && interval <= MaxInterval && count != 0 {
				t.Fatalf("Marshal refused a valid advert: %v", err)
			}
			return
		}
		got, gotForm, err := Parse(b, src, dst)
		if err != nil {
			t.Fatalf("Parse(Marshal(a)): %v", err)
		}
		if gotForm != form {
			t.Fatalf("form %v, sent %v", gotForm, form)
		}
		if diff := cmp.Diff(a, got, addrComparer); diff != "" {
			t.Fatalf("(-sent +parsed):\n%s", diff)
		}
	})
}

// FuzzRouter: a router fed arbitrary packets never panics, only accepts
// what parses, and keeps its counters consistent.
func FuzzRouter(f *testing.F) {
	f.Add(valid(f, v4src), 255, uint8(200))
	f.Add([]byte{0x31, 7, 0, 1, 0, 100, 0, 0, 192, 0, 2, 100}, 255, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, ttl int, prio uint8) {
		if prio == 0 {
			prio = 1
		}
		r, err := NewRouter(Config{VRID: 7, Priority: prio, Source: netip.MustParseAddr("192.0.2.1"), AdvertInterval: 100 * time.Millisecond,
			Preempt: true, VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}, Peers: []netip.Addr{v4src}})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(0, 0)
		r.Step(now, Start{})
		for i := 0; i < 3; i++ {
			now = now.Add(30 * time.Millisecond)
			r.Step(now, Packet{Src: v4src, Dst: GroupIPv4, TTL: ttl, Data: data})
			r.Step(now, Tick{})
		}
		s := r.Stats()
		var drops uint64
		for _, n := range s.Drops {
			drops += n
		}
		if drops+s.AdvertsReceived != 3 {
			t.Fatalf("3 packets, %d dropped + %d received", drops, s.AdvertsReceived)
		}
		if s.AdvertsReceived > 0 {
			if _, _, err := Parse(data, v4src, GroupIPv4); err != nil || ttl != 255 {
				t.Fatalf("accepted a packet that does not parse (%v) or has TTL %d", err, ttl)
			}
		}
	})
}
