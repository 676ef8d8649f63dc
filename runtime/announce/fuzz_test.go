package announce

import (
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// Round-trip property: whatever MAC and address, the frame we build parses
// back to exactly the announcement we meant.
func FuzzGratuitousARP(f *testing.F) {
	f.Add([]byte{2, 0, 0x5e, 1, 2, 3}, []byte{192, 0, 2, 100})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, macb, ipb []byte) {
		if len(macb) != 6 || len(ipb) != 4 {
			return
		}
		mac := net.HardwareAddr(macb)
		vip := netip.AddrFrom4([4]byte(ipb))
		b, err := gratuitousARP(mac, vip)
		if err != nil {
			t.Fatal(err)
		}
		var fr ethernet.Frame
		if err := fr.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(fr.Payload); err != nil {
			t.Fatal(err)
		}
		if fr.Source.String() != mac.String() || p.SenderHardwareAddr.String() != mac.String() ||
			p.SenderIP != vip || p.TargetIP != vip || p.Operation != arp.OperationRequest ||
			fr.EtherType != ethernet.EtherTypeARP {
			t.Fatalf("round trip of %v/%v: frame %+v packet %+v", mac, vip, fr, p)
		}
	})
}

func FuzzUnsolicitedNA(f *testing.F) {
	f.Add([]byte{2, 0, 0x5e, 1, 2, 3}, []byte(netip.MustParseAddr("2001:db8::100").AsSlice()))
	f.Fuzz(func(t *testing.T, macb, ipb []byte) {
		if len(macb) != 6 || len(ipb) != 16 {
			return
		}
		mac := net.HardwareAddr(macb)
		vip := netip.AddrFrom16([16]byte(ipb))
		b, err := ndp.MarshalMessage(unsolicitedNA(mac, vip))
		if err != nil {
			return // ndp refuses some targets (e.g. IPv4-mapped); Announce reports that
		}
		m, err := ndp.ParseMessage(b)
		if err != nil {
			t.Fatalf("our NA for %v does not parse: %v", vip, err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || !na.Override || na.Solicited || na.Router || na.TargetAddress != vip || len(na.Options) != 1 {
			t.Fatalf("round trip of %v: %+v", vip, m)
		}
		if lla, ok := na.Options[0].(*ndp.LinkLayerAddress); !ok || lla.Addr.String() != mac.String() {
			t.Fatalf("link-layer option: %+v", na.Options[0])
		}
	})
}
