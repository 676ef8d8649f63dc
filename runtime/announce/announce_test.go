package announce

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mwgc/mwgc/runtime/netlab"
)

var mac = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}

func TestGratuitousARPFrame(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	b, err := gratuitousARP(mac, vip)
	if err != nil {
		t.Fatal(err)
	}
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		t.Fatal(err)
	}
	type view struct {
		EthDst, EthSrc, SenderHW, TargetHW string
		EtherType                          ethernet.EtherType
		Op                                 arp.Operation
		SenderIP, TargetIP                 netip.Addr
	}
	got := view{f.Destination.String(), f.Source.String(), p.SenderHardwareAddr.String(), p.TargetHardwareAddr.String(),
		f.EtherType, p.Operation, p.SenderIP, p.TargetIP}
	want := view{"ff:ff:ff:ff:ff:ff", mac.String(), mac.String(), "ff:ff:ff:ff:ff:ff",
		ethernet.EtherTypeARP, arp.OperationRequest, vip, vip}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("gratuitous ARP (-want +got):\n%s", diff)
	}
}

func TestUnsolicitedNARoundTrip(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8::100")
	b, err := ndp.MarshalMessage(unsolicitedNA(mac, vip))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("parsed %T, want neighbour advertisement", m)
	}
	if !na.Override || na.Solicited || na.Router || na.TargetAddress != vip || len(na.Options) != 1 {
		t.Fatalf("NA = %+v", na)
	}
	lla, ok := na.Options[0].(*ndp.LinkLayerAddress)
	if !ok || lla.Direction != ndp.Target || lla.Addr.String() != mac.String() {
		t.Errorf("option = %+v, want target link-layer address %v", na.Options[0], mac)
	}
}

func TestAnnounceSeenByObserver(t *testing.T) {
	lab := netlab.New(t, "a")
	// No IPv4 address on the interface: a gratuitous ARP must still go out.
	ll := lab.LinkLocal("a")
	mac := lab.MAC("a")
	var an *Announcer
	if err := lab.Do("a", func() (err error) {
		an, err = Open(lab.Ifname("a"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer an.Close()

	capture := lab.Capture("arp or icmp6")
	v4, v6 := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")
	for range 2 {
		for _, vip := range []netip.Addr{v4, v6} {
			if err := an.Announce(vip); err != nil {
				t.Fatal(err)
			}
		}
	}
	pcap := capture.Stop()

	arps, err := netlab.DecodeARP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	wantARP := netlab.ARPPacket{EthSrc: mac, EthDst: "ff:ff:ff:ff:ff:ff", Opcode: 1, SenderMAC: mac,
		SenderIP: "192.0.2.100", TargetMAC: "ff:ff:ff:ff:ff:ff", TargetIP: "192.0.2.100", Gratuitous: true}
	if len(arps) != 2 {
		t.Fatalf("observer saw %d ARP packets, want 2: %+v", len(arps), arps)
	}
	for _, p := range arps {
		p.Time = wantARP.Time
		if diff := cmp.Diff(wantARP, p); diff != "" {
			t.Errorf("ARP (-want +got):\n%s", diff)
		}
	}

	nas, err := netlab.DecodeNA(pcap)
	if err != nil {
		t.Fatal(err)
	}
	wantNA := netlab.NAPacket{EthSrc: mac, EthDst: "33:33:00:00:00:01", Src: ll, Dst: "ff02::1", HopLimit: 255,
		Target: "2001:db8::100", Override: true, TargetLinkAddr: mac}
	if len(nas) != 2 {
		t.Fatalf("observer saw %d neighbour advertisements, want 2: %+v", len(nas), nas)
	}
	for _, p := range nas {
		p.Time = wantNA.Time
		if diff := cmp.Diff(wantNA, p); diff != "" {
			t.Errorf("NA (-want +got):\n%s", diff)
		}
	}

	an.Close()
	if err := an.Announce(v4); err == nil {
		t.Error("Announce after Close succeeded")
	}
}

// TestAnnounceAfterLinkFlap: an announcer opened while the link was up
// sends its first announcement after the link went down and came back
// (the kernel left ENETDOWN pending on the socket when the link went
// down), and fails while the link is down.
func TestAnnounceAfterLinkFlap(t *testing.T) {
	lab := netlab.New(t, "a")
	var an *Announcer
	if err := lab.Do("a", func() (err error) { an, err = Open(lab.Ifname("a")); return err }); err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	vip := netip.MustParseAddr("192.0.2.100")
	if err := an.Announce(vip); err != nil {
		t.Fatal(err)
	}
	lab.SetLink("a", lab.Ifname("a"), false)
	if err := an.Announce(vip); err == nil {
		t.Error("an announcement while the link is down succeeded")
	}
	lab.SetLink("a", lab.Ifname("a"), true)
	lab.SetLink("a", lab.Ifname("a"), false)
	lab.SetLink("a", lab.Ifname("a"), true)
	capture := lab.Capture("arp")
	if err := an.Announce(vip); err != nil {
		t.Errorf("the first announcement after the link came back: %v", err)
	}
	arps, err := netlab.DecodeARP(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	if len(arps) != 1 {
		t.Errorf("observer saw %d ARP packets after the flap, want 1", len(arps))
	}
}
