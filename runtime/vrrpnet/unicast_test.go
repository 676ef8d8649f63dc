package vrrpnet

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// TestWritePacketTo: a unicast advert reaches its peer with TTL / hop
// limit 255, source and destination intact (IPv4, IPv6 global and
// link-local), a third node on the same hub does not read it, and the
// observer's tshark calls the readdressed IPv4 checksum good.
func TestWritePacketTo(t *testing.T) {
	lab := netlab.New(t, "a", "b", "c")
	for i, n := range []string{"a", "b", "c"} {
		lab.AddAddr(n, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 24).String())
		lab.AddAddr(n, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 64).String())
	}
	ll := func(n string) netip.Addr { return netip.MustParseAddr(lab.LinkLocal(n)) }
	g4 := func(n string) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(n[0] - 'a' + 1)}) }
	g6 := func(n string) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(n[0] - 'a' + 1)})
	}
	for _, tc := range []struct {
		name string
		ipv6 bool
		addr func(string) netip.Addr
		vip  netip.Addr
	}{
		{"IPv4", false, g4, netip.MustParseAddr("192.0.2.100")},
		{"IPv6 global", true, g6, netip.MustParseAddr("2001:db8::100")},
		{"IPv6 link-local", true, ll, netip.MustParseAddr("2001:db8::100")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := map[string]*Conn{}
			for _, n := range []string{"a", "b", "c"} {
				conns[n] = listenIn(t, lab, n, tc.ipv6, tc.addr(n))
			}
			src, to := tc.addr("a"), tc.addr("b")
			ad := vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100, Addresses: []netip.Addr{tc.vip}}
			form, group := vrrp.ChecksumPseudoHeader, vrrp.GroupIPv4
			if tc.ipv6 {
				form, group = vrrp.ChecksumIPv6, vrrp.GroupIPv6
			}
			msg, err := ad.Marshal(src, group, form)
			if err != nil {
				t.Fatal(err)
			}
			msg, err = vrrp.AppendReaddressed(nil, msg, form, src, to)
			if err != nil {
				t.Fatal(err)
			}
			capture := lab.Capture("ip proto 112 or ip6 proto 112")
			if err := conns["a"].WritePacketTo(msg, to); err != nil {
				t.Fatal(err)
			}
			got := read(t, conns["b"], 5*time.Second)
			if got.Src != src || got.Dst != to || got.TTL != 255 {
				t.Errorf("b received from %v to %v with TTL %d; want %v, %v, 255", got.Src, got.Dst, got.TTL, src, to)
			}
			if _, f, err := vrrp.Parse(got.Data, got.Src, got.Dst); err != nil || f != form {
				t.Errorf("b cannot parse what it received: %v %v", f, err)
			}
			if err := conns["c"].SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if _, s, d, _, err := conns["c"].ReadPacket(make([]byte, 128)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("c read b's unicast advert (%v -> %v, %v)", s, d, err)
			}
			ads, err := netlab.DecodeVRRP(capture.Stop())
			if err != nil {
				t.Fatal(err)
			}
			if len(ads) != 1 || ads[0].Dst != to.String() || ads[0].TTL != 255 || !ads[0].ChecksumOK {
				t.Errorf("observer decoded %+v; want one advert to %v, TTL 255, checksum good", ads, to)
			}
		})
	}
	// A destination of the other family is refused before any system call.
	c := listenIn(t, lab, "a", false, g4("a"))
	if err := c.WritePacketTo([]byte{0x31}, g6("b")); err == nil {
		t.Error("an IPv6 destination on an IPv4 socket was accepted")
	}
}
