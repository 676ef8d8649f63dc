package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// TestAppendReaddressed: a copy readdressed to a unicast peer is the advert
// Marshal makes for that destination (pseudo-header form, IPv6), and
// unchanged where the checksum names no destination (message-only form).
func TestAppendReaddressed(t *testing.T) {
	src4, peer4 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	src6, peer6 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::2")
	adv := func(vips ...string) *Advert {
		a := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100}
		for _, v := range vips {
			a.Addresses = append(a.Addresses, netip.MustParseAddr(v))
		}
		return a
	}
	marshal := func(a *Advert, src, dst netip.Addr, form ChecksumForm) []byte {
		b, err := a.Marshal(src, dst, form)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		advert   *Advert
		form     ChecksumForm
		src, to  netip.Addr
		group    netip.Addr
		wantSame bool // the copy equals the group advert
	}{
		{"pseudo-header", adv("192.0.2.100"), ChecksumPseudoHeader, src4, peer4, GroupIPv4, false},
		{"pseudo-header, two VIPs", adv("192.0.2.100", "192.0.2.101"), ChecksumPseudoHeader, src4, peer4, GroupIPv4, false},
		{"message only", adv("192.0.2.100"), ChecksumRFC9568, src4, peer4, GroupIPv4, true},
		{"IPv6", adv("2001:db8::100"), ChecksumIPv6, src6, peer6, GroupIPv6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := marshal(tc.advert, tc.src, tc.group, tc.form)
			got, err := AppendReaddressed([]byte("prefix"), group, tc.form, tc.src, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("buffer not appended to: % x", got)
			}
			got = got[len("prefix"):]
			want := group
			if !tc.wantSame {
				want = marshal(tc.advert, tc.src, tc.to, tc.form)
				if bytes.Equal(want, group) {
					t.Fatal("test needs a destination that changes the checksum")
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("copy % x, want % x", got, want)
			}
			if _, form, err := Parse(got, tc.src, tc.to); err != nil || form != tc.form {
				t.Errorf("the peer parses the copy: form %v, %v", form, err)
			}
		})
	}
}

// TestAppendReaddressedTrailer: the IPv4 checksum covers the message
// without the authentication trailer, which is copied as it is; bad input
// is refused without appending.
func TestAppendReaddressedTrailer(t *testing.T) {
	src, to := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.20")
	a := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	msg, err := a.Marshal(src, GroupIPv4, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	trailer := bytes.Repeat([]byte{0xab}, auth.TrailerLen)
	got, err := AppendReaddressed(nil, append(bytes.Clone(msg), trailer...), ChecksumPseudoHeader, src, to)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := a.Marshal(src, to, ChecksumPseudoHeader)
	if diff := cmp.Diff(append(want, trailer...), got); diff != "" {
		t.Errorf("signed copy (-want +got):\n%s", diff)
	}

	for _, bad := range []struct {
		name    string
		data    []byte
		src, to netip.Addr
	}{
		{"short", msg[:5], src, to},
		{"count beyond the data", append([]byte{0x31, 51, 200, 9}, msg[4:]...), src, to},
		{"families differ", msg, src, netip.MustParseAddr("2001:db8::2")},
		{"no destination", msg, src, netip.Addr{}},
	} {
		out, err := AppendReaddressed([]byte("x"), bad.data, ChecksumPseudoHeader, bad.src, bad.to)
		if err == nil || string(out) != "x" {
			t.Errorf("%s: %q, %v; want an error and the buffer untouched", bad.name, out, err)
		}
	}
}

// TestUnicastSignedFanOut: the Active signs one advert; each peer gets a
// copy whose checksum names it, and each peer's router verifies the same
// trailer (one sequence number, one HMAC) — keepalived 2.4.3's way. A copy
// delivered to the wrong peer is not for it.
func TestUnicastSignedFanOut(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	keys := keyring(auth.ModeEnforce, 1, 1)
	cfg := func(src netip.Addr, prio uint8, peers ...netip.Addr) Config {
		return Config{VRID: 51, Priority: prio, Source: src, AdvertInterval: 100 * time.Millisecond, Preempt: true,
			VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}, Peers: peers,
			Checksum: ChecksumPseudoHeader, Auth: keys, Unicast: true}
	}
	now := time.Unix(1_700_000_000, 0)
	active := mustRouter(t, cfg(a, 200, b, c))
	backups := map[netip.Addr]*Router{b: mustRouter(t, cfg(b, 150, a, c)), c: mustRouter(t, cfg(c, 100, a, b))}
	active.Step(now, Start{})
	for _, r := range backups {
		r.Step(now, Start{})
	}
	now = now.Add(ActiveDownInterval(200, 100*time.Millisecond))
	var advert []byte
	for _, act := range active.Step(now, Tick{}) {
		if s, ok := act.(SendAdvert); ok {
			advert = s.Data
		}
	}
	if len(advert) != HeaderLen+4+auth.TrailerLen {
		t.Fatalf("signed advert of %d bytes: % x", len(advert), advert)
	}
	copies := map[netip.Addr][]byte{}
	for _, to := range []netip.Addr{b, c} {
		cp, err := AppendReaddressed(nil, advert, ChecksumPseudoHeader, a, to)
		if err != nil {
			t.Fatal(err)
		}
		copies[to] = cp
	}
	if binary.BigEndian.Uint16(copies[b][6:]) == binary.BigEndian.Uint16(copies[c][6:]) {
		t.Error("both copies carry one checksum; each should name its destination")
	}
	if !bytes.Equal(copies[b][8:], copies[c][8:]) {
		t.Error("the copies differ beyond the checksum: one signature should serve every peer")
	}
	for to, r := range backups {
		acts := r.Step(now, Packet{Src: a, Dst: to, TTL: 255, Data: copies[to]})
		if len(acts) != 0 {
			t.Errorf("%v: %v", to, acts)
		}
		if st := r.Stats(); st.AdvertsReceived != 1 || st.Auth.Verified != 1 {
			t.Errorf("%v: received %d, verified %d; want 1 and 1", to, st.AdvertsReceived, st.Auth.Verified)
		}
	}
	acts := backups[c].Step(now, Packet{Src: a, Dst: b, TTL: 255, Data: copies[b]})
	if len(acts) != 1 || acts[0].(Dropped).Reason != DropDestination {
		t.Errorf("a copy for %v delivered to %v: %v, want a destination drop", b, c, acts)
	}
}

// FuzzReaddressed: whatever bytes a caller passes, readdressing either
// refuses (appending nothing) or returns a copy that differs from the input
// in the checksum field at most; a group advert that parses for the group
// parses for the new destination afterwards.
func FuzzReaddressed(f *testing.F) {
	f.Add(valid(f, v4src), true)
	f.Add(valid(f, v4src), false)
	f.Add([]byte{0x31, 1, 100, 3, 0, 100, 0, 0, 192, 0, 2, 100}, true)
	f.Add([]byte{0x31, 1}, true)
	to := netip.MustParseAddr("192.0.2.77")
	f.Fuzz(func(t *testing.T, data []byte, pseudo bool) {
		form := ChecksumRFC9568
		if pseudo {
			form = ChecksumPseudoHeader
		}
		got, err := AppendReaddressed(nil, data, form, v4src, to)
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("refused (%v) but appended % x", err, got)
			}
			return
		}
		if len(got) != len(data) || (len(data) >= 8 && (!bytes.Equal(got[:6], data[:6]) || !bytes.Equal(got[8:], data[8:]))) {
			t.Fatalf("copy % x of % x changed more than the checksum", got, data)
		}
		if _, f1, err := Parse(data, v4src, GroupIPv4); err == nil && f1 == form {
			if _, f2, err := Parse(got, v4src, to); err != nil || f2 != form {
				t.Fatalf("group advert % x parses (%v), its copy % x does not for %v: %v %v", data, f1, got, to, f2, err)
			}
		}
	})
}

// FuzzUnicastRouter: a unicast router (minimum TTL 64) fed arbitrary
// packets from its peer, addressed to its source, to the group or to
// another address, never panics; it accepts only what parses for that
// destination with a TTL its rules allow, and every drop is charged to
// the peer it came from.
func FuzzUnicastRouter(f *testing.F) {
	f.Add(valid(f, v4src), 255, uint8(0))
	f.Add(valid(f, v4src), 64, uint8(0))
	f.Add(valid(f, v4src), 255, uint8(1))
	f.Add(valid(f, v4src), 255, uint8(2))
	self := netip.MustParseAddr("192.0.2.1")
	f.Fuzz(func(t *testing.T, data []byte, ttl int, where uint8) {
		dst := []netip.Addr{self, GroupIPv4, netip.MustParseAddr("192.0.2.100")}[int(where)%3]
		r, err := NewRouter(Config{VRID: 7, Priority: 100, Source: self, AdvertInterval: 100 * time.Millisecond,
			Preempt: true, VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}, Peers: []netip.Addr{v4src},
			Unicast: true, MinTTL: 64})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(0, 0)
		r.Step(now, Start{})
		r.Step(now, Packet{Src: v4src, Dst: dst, TTL: ttl, Data: data})
		s := r.Stats()
		var drops, peerDrops uint64
		for i := range s.Drops {
			drops += s.Drops[i]
			peerDrops += s.Peers[0].Drops[i]
		}
		if drops+s.AdvertsReceived != 1 || peerDrops != drops {
			t.Fatalf("1 packet: %d dropped (%d charged to the peer), %d received", drops, peerDrops, s.AdvertsReceived)
		}
		if s.AdvertsReceived == 0 {
			return
		}
		okTTL := (dst == self && ttl >= 64 && ttl <= 255) || (dst == GroupIPv4 && ttl == 255)
		if _, _, err := Parse(data, v4src, dst); err != nil || !okTTL {
			t.Fatalf("accepted a packet to %v with TTL %d that parses with %v", dst, ttl, err)
		}
	})
}
