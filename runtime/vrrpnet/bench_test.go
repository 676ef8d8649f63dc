package vrrpnet

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// BenchmarkAdvertAcrossLab measures one advert from a Conn in one lab node
// to a Conn in another (through veth, bridge, veth): the driver's share of
// a failover's latency.
func BenchmarkAdvertAcrossLab(b *testing.B) {
	for _, fam := range []struct {
		name string
		ipv6 bool
	}{{"IPv4", false}, {"IPv6", true}} {
		b.Run(fam.name, func(b *testing.B) {
			lab := netlab.New(b, "a", "b")
			lab.AddAddr("a", "192.0.2.1/24")
			lab.AddAddr("b", "192.0.2.2/24")
			srcA, srcB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
			if fam.ipv6 {
				srcA, srcB = netip.MustParseAddr(lab.LinkLocal("a")), netip.MustParseAddr(lab.LinkLocal("b"))
			}
			var a, r *Conn
			if err := lab.Do("a", func() (err error) { a, err = Listen("eth0", fam.ipv6, srcA); return err }); err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			if err := lab.Do("b", func() (err error) { r, err = Listen("eth0", fam.ipv6, srcB); return err }); err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			msg := advert(1, 100, 10, netip.MustParseAddr("192.0.2.100"))
			if fam.ipv6 {
				msg = advert(1, 100, 10, netip.MustParseAddr("fe80::1"))
			}
			buf := make([]byte, 1500)
			for b.Loop() {
				if err := a.WritePacket(msg); err != nil {
					b.Fatal(err)
				}
				_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, _, _, _, err := r.ReadPacket(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
