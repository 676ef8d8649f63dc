package vrrpwatch

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

var (
	attackerMAC = net.HardwareAddr{0x02, 0xba, 0xd0, 0, 0, 1}
	vip4        = netip.MustParseAddr("192.0.2.100")
	vip6        = netip.MustParseAddr("2001:db8::100")
)

// arpFrame is an Ethernet frame with an ARP packet of op from sender
// (hardware mac, protocol address ip) asking for or answering target.
func arpFrame(t testing.TB, op arp.Operation, mac net.HardwareAddr, ip, target netip.Addr) []byte {
	p, err := arp.NewPacket(op, mac, ip, net.HardwareAddr{0, 0, 0, 0, 0, 0}, target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	eth := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	return append(append(eth, 0x08, 0x06), b...)
}

// naFrame is an Ethernet frame with an unsolicited Neighbor Advertisement
// for target from Ethernet source src, with a target link-layer option
// ll when given, and IPv6 hop limit hops.
func naFrame(t testing.TB, src net.HardwareAddr, target netip.Addr, ll net.HardwareAddr, hops byte) []byte {
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: target}
	if ll != nil {
		na.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ll}}
	}
	body, err := ndp.MarshalMessage(na)
	if err != nil {
		t.Fatal(err)
	}
	ip := make([]byte, 40)
	ip[0], ip[6], ip[7] = 0x60, protoICMPv6, hops
	ip[5] = byte(len(body))
	copy(ip[8:], netip.MustParseAddr("fe80::bad").AsSlice())
	copy(ip[24:], netip.MustParseAddr("ff02::1").AsSlice())
	eth := append([]byte{0x33, 0x33, 0, 0, 0, 1}, src...)
	return append(append(append(eth, 0x86, 0xdd), ip...), body...)
}

func TestParseClaim(t *testing.T) {
	client := netip.MustParseAddr("192.0.2.50")
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 9}
	ns, _ := ndp.MarshalMessage(&ndp.NeighborSolicitation{TargetAddress: vip6})
	nsFrame := naFrame(t, attackerMAC, vip6, nil, 255)
	nsFrame = append(nsFrame[:14+40], ns...)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  *Claim
	}{
		{"gratuitous ARP", arpFrame(t, arp.OperationRequest, attackerMAC, vip4, vip4), &Claim{Addr: vip4, MAC: attackerMAC, Kind: "arp-request"}},
		{"ARP reply", arpFrame(t, arp.OperationReply, attackerMAC, vip4, client), &Claim{Addr: vip4, MAC: attackerMAC, Kind: "arp-reply"}},
		{"a client asking for the VIP claims its own address", arpFrame(t, arp.OperationRequest, other, client, vip4), &Claim{Addr: client, MAC: other, Kind: "arp-request"}},
		{"NA with target link-layer option", naFrame(t, other, vip6, attackerMAC, 255), &Claim{Addr: vip6, MAC: attackerMAC, Kind: "neighbor-advertisement"}},
		{"NA without the option: the Ethernet source", naFrame(t, attackerMAC, vip6, nil, 255), &Claim{Addr: vip6, MAC: attackerMAC, Kind: "neighbor-advertisement"}},
		{"NA with hop limit 254 (receivers drop it)", naFrame(t, attackerMAC, vip6, attackerMAC, 254), nil},
		{"neighbor solicitation", nsFrame, nil},
		{"VRRP", frame4([4]byte{192, 0, 2, 11}, 112, 255, 0x31, 51, 200, 1), nil},
		{"cut ARP", arpFrame(t, arp.OperationReply, attackerMAC, vip4, client)[:30], nil},
		{"short", []byte{1, 2, 3}, nil},
	} {
		var c Claim
		ok := ParseClaim(tc.frame, &c)
		if ok != (tc.want != nil) {
			t.Errorf("%s: ParseClaim = %v (%+v)", tc.name, ok, c)
			continue
		}
		if ok {
			if diff := cmp.Diff(tc.want, &c, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("%s: (-want +got):\n%s", tc.name, diff)
			}
		}
	}
}

// TestClaimFilter runs the claim filter in x/net's BPF VM (the packet-type
// extension replaced by a constant, as in TestFilter): it keeps incoming
// ARP from a watched address and advertisements for one, nothing else.
func TestClaimFilter(t *testing.T) {
	other4, other6 := netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("2001:db8::101")
	watched := []netip.Addr{netip.MustParseAddr("192.0.2.99"), vip4, netip.MustParseAddr("2001:db8::99"), vip6}
	vmFor := func(t *testing.T, addrs []netip.Addr, pkttype uint32) *bpf.VM {
		raw, err := claimFilter(addrs)
		if err != nil {
			t.Fatal(err)
		}
		return vmWithPacketType(t, raw, pkttype)
	}
	frames := []struct {
		name  string
		frame []byte
		keep  bool
	}{
		{"GARP for a VIP", arpFrame(t, arp.OperationRequest, attackerMAC, vip4, vip4), true},
		{"ARP reply from a VIP", arpFrame(t, arp.OperationReply, attackerMAC, vip4, vip4), true},
		{"ARP from another address", arpFrame(t, arp.OperationRequest, attackerMAC, other4, vip4), false},
		{"NA for a VIP", naFrame(t, attackerMAC, vip6, attackerMAC, 255), true},
		{"NA for an address sharing three words", naFrame(t, attackerMAC, netip.MustParseAddr("2001:db8::1:100"), attackerMAC, 255), false},
		{"NA for another address", naFrame(t, attackerMAC, other6, nil, 255), false},
		{"VRRP", frame4([4]byte{192, 0, 2, 100}, 112, 255, 0x31, 51, 200, 1), false},
	}
	t.Run("incoming", func(t *testing.T) {
		vm := vmFor(t, watched, 0)
		for _, tc := range frames {
			n, err := vm.Run(bytes.Clone(tc.frame))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if (n > 0) != tc.keep {
				t.Errorf("%s: filter returned %d", tc.name, n)
			}
		}
	})
	t.Run("outgoing", func(t *testing.T) {
		if n, _ := vmFor(t, watched, packetOutgoing).Run(frames[0].frame); n != 0 {
			t.Errorf("our own GARP was kept (%d)", n)
		}
	})
	t.Run("many IPv4 addresses: every ARP frame, Read compares", func(t *testing.T) {
		var many []netip.Addr
		for i := range maxFilteredIPv4 + 1 {
			many = append(many, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
		}
		vm := vmFor(t, append(many, vip6), 0)
		if n, _ := vm.Run(arpFrame(t, arp.OperationRequest, attackerMAC, other4, vip4)); n == 0 {
			t.Error("ARP dropped although the filter cannot compare this many addresses")
		}
		if n, _ := vm.Run(naFrame(t, attackerMAC, vip6, nil, 255)); n == 0 {
			t.Error("NA for a watched IPv6 address dropped")
		}
	})
	t.Run("no addresses", func(t *testing.T) {
		vm := vmFor(t, nil, 0)
		for _, tc := range frames {
			if n, _ := vm.Run(bytes.Clone(tc.frame)); n != 0 {
				t.Errorf("%s kept with nothing watched", tc.name)
			}
		}
	})
}

// FuzzParseClaim: any bytes decode or are refused without panicking; what
// decodes, written again as the canonical frame of its kind, decodes to
// the same claim (round trip).
func FuzzParseClaim(f *testing.F) {
	f.Add(arpFrame(f, arp.OperationRequest, attackerMAC, vip4, vip4))
	f.Add(arpFrame(f, arp.OperationReply, attackerMAC, vip4, netip.MustParseAddr("192.0.2.50")))
	f.Add(naFrame(f, attackerMAC, vip6, attackerMAC, 255))
	f.Add(naFrame(f, attackerMAC, vip6, nil, 255))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Claim
		if !ParseClaim(b, &c) {
			return
		}
		if !c.Addr.IsValid() || len(c.MAC) != 6 {
			t.Fatalf("decoded %+v from %x", c, b)
		}
		var again []byte
		switch c.Kind {
		case "arp-request":
			again = arpFrame(t, arp.OperationRequest, c.MAC, c.Addr, c.Addr)
		case "arp-reply":
			again = arpFrame(t, arp.OperationReply, c.MAC, c.Addr, c.Addr)
		case "neighbor-advertisement":
			again = naFrame(t, c.MAC, c.Addr, c.MAC, 255)
		default:
			t.Fatalf("kind %q", c.Kind)
		}
		var c2 Claim
		if !ParseClaim(again, &c2) || c2.Addr != c.Addr || !bytes.Equal(c2.MAC, c.MAC) || c2.Kind != c.Kind {
			t.Fatalf("round trip: %+v, then %+v", c, c2)
		}
	})
}
