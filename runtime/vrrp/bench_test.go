package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

func benchAdvert(n int) *Advert {
	a := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100}
	for i := 0; i < n; i++ {
		a.Addresses = append(a.Addresses, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}))
	}
	return a
}

func BenchmarkParse(b *testing.B) {
	for _, form := range []ChecksumForm{ChecksumRFC9568, ChecksumPseudoHeader} {
		data, err := benchAdvert(4).Marshal(v4src, GroupIPv4, form)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("ipv4-"+form.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, _, err := Parse(data, v4src, GroupIPv4); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("ipv4-"+form.String()+"-into", func(b *testing.B) {
			var a Advert
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := ParseInto(&a, data, v4src, GroupIPv4); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	a6 := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100, Addresses: addrs("fe80::1", "2001:db8::1", "2001:db8::2", "2001:db8::3")}
	data6, err := a6.Marshal(v6src, GroupIPv6, ChecksumIPv6)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ipv6", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data6)))
		for b.Loop() {
			if _, _, err := Parse(data6, v6src, GroupIPv6); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	a := benchAdvert(4)
	b.Run("ipv4-pseudo-header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Marshal(v4src, GroupIPv4, ChecksumPseudoHeader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ipv4-pseudo-header-append", func(b *testing.B) {
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = a.AppendMarshal(buf[:0], v4src, GroupIPv4, ChecksumPseudoHeader); err != nil {
				b.Fatal(err)
			}
		}
	})
	a6 := &Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100, Addresses: addrs("fe80::1", "2001:db8::1", "2001:db8::2", "2001:db8::3")}
	b.Run("ipv6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a6.Marshal(v6src, GroupIPv6, ChecksumIPv6); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchRouter(b *testing.B) *Router {
	r, err := NewRouter(Config{VRID: 51, Priority: 100, Source: netip.MustParseAddr("192.0.2.1"), AdvertInterval: 10 * time.Millisecond,
		Preempt: true, VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("192.0.2.101/24"),
			netip.MustParsePrefix("192.0.2.102/24"), netip.MustParsePrefix("192.0.2.103/24")}, Peers: []netip.Addr{v4src}})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkStep measures the hot paths: a Backup accepting the Active's
// advert, and an Active's advert timer firing.
func BenchmarkStep(b *testing.B) {
	b.Run("backup-receive", func(b *testing.B) {
		r := benchRouter(b)
		now := t0
		r.Step(now, Start{})
		data, err := benchAdvert(4).Marshal(v4src, GroupIPv4, ChecksumPseudoHeader)
		if err != nil {
			b.Fatal(err)
		}
		// Boxed once, as a driver reusing its event would.
		var p Event = Packet{Src: v4src, Dst: GroupIPv4, TTL: 255, Data: data}
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(10 * time.Millisecond)
			if acts := r.Step(now, p); len(acts) != 0 {
				b.Fatalf("unexpected actions %v", acts)
			}
		}
		if r.State() != StateBackup {
			b.Fatal("left Backup")
		}
	})
	b.Run("active-tick", func(b *testing.B) {
		benchActiveTicks(b, benchRouter(b), t0)
	})
	b.Run("drop-unknown-source", func(b *testing.B) {
		r := benchRouter(b)
		r.Step(t0, Start{})
		data, _ := benchAdvert(4).Marshal(netip.MustParseAddr("192.0.2.66"), GroupIPv4, ChecksumRFC9568)
		p := Packet{Src: netip.MustParseAddr("192.0.2.66"), Dst: GroupIPv4, TTL: 255, Data: data}
		b.ReportAllocs()
		for b.Loop() {
			r.Step(t0, p)
		}
	})
}

// BenchmarkStepAuth: the same hot paths with authentication and the
// policy on — what they add per advert is the difference to BenchmarkStep.
func BenchmarkStepAuth(b *testing.B) {
	withAuth := func(b *testing.B, prio uint8, src, peer netip.Addr) *Router {
		r, err := NewRouter(Config{VRID: 51, Priority: prio, Source: src, AdvertInterval: 10 * time.Millisecond,
			Preempt: true, VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("192.0.2.101/24"),
				netip.MustParsePrefix("192.0.2.102/24"), netip.MustParsePrefix("192.0.2.103/24")}, Peers: []netip.Addr{peer},
			Policy: []PeerPolicy{{Addr: peer, Priority: 200}}, Auth: keyring(0, 1, 1)})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	b.Run("active-tick", func(b *testing.B) {
		benchActiveTicks(b, withAuth(b, 200, v4src, netip.MustParseAddr("192.0.2.1")), vecTime)
	})
	b.Run("backup-receive", func(b *testing.B) {
		active := withAuth(b, 200, v4src, netip.MustParseAddr("192.0.2.1"))
		now := vecTime
		active.Step(now, Start{})
		now = active.Deadline()
		active.Step(now, Tick{})
		adverts := make([][]byte, 4096)
		at := make([]time.Time, len(adverts))
		for i := range adverts {
			now = active.Deadline()
			adverts[i], at[i] = active.Step(now, Tick{})[0].(SendAdvert).Data, now
		}
		r := withAuth(b, 100, netip.MustParseAddr("192.0.2.1"), v4src)
		r.Step(vecTime, Start{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == len(adverts) { // the marks are past them: start a fresh router
				b.StopTimer()
				r = withAuth(b, 100, netip.MustParseAddr("192.0.2.1"), v4src)
				r.Step(vecTime, Start{})
				i = 0
				b.StartTimer()
			}
			if acts := r.Step(at[i], Packet{Src: v4src, Dst: GroupIPv4, TTL: 255, Data: adverts[i]}); len(acts) != 0 {
				b.Fatalf("unexpected actions %v", acts)
			}
			i++
		}
	})
}

// benchActiveTicks starts r at start, lets it become Active and times
// its advert ticks, each of which must send exactly one advert.
func benchActiveTicks(b *testing.B, r *Router, start time.Time) {
	r.Step(start, Start{})
	r.Step(r.Deadline(), Tick{})
	b.ReportAllocs()
	for b.Loop() {
		if acts := r.Step(r.Deadline(), Tick{}); len(acts) != 1 {
			b.Fatalf("want one advert, got %v", acts)
		}
	}
}
