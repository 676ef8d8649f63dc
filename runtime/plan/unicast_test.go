package plan

import (
	"net/netip"
	"strings"
	"testing"
)

// unicastPlan: both groups unicast, the IPv6 one from a global address to
// a global peer; discovery by unicast on a segment without broadcast.
func unicastPlan() *Plan {
	p := directorPlan()
	v4, v6 := &p.VRRP.Groups[0], &p.VRRP.Groups[1]
	v4.Unicast = &Unicast{MinTTL: 255}
	v4.Peers = append(v4.Peers, Peer{Name: "far", Address: netip.MustParseAddr("203.0.113.9"), Priority: 50, External: true})
	v6.Unicast = &Unicast{MinTTL: 64}
	v6.Source = netip.MustParseAddr("2001:db8::11")
	v6.Peers[0].Address = netip.MustParseAddr("2001:db8::12")
	p.Management.Discovery = DiscoveryUnicast
	p.Management.Broadcast = netip.Addr{}
	return p
}

// TestUnicastPlan: unicast groups and discovery round-trip and validate;
// each broken field is refused with its path, and multicast groups keep
// their stricter rules.
func TestUnicastPlan(t *testing.T) {
	b := mustEncode(t, unicastPlan())
	p, err := Decode(b)
	if err != nil {
		t.Fatalf("valid unicast plan: %v", err)
	}
	if p.VRRP.Groups[1].Unicast.MinTTL != 64 || p.Management.Discovery != DiscoveryUnicast {
		t.Errorf("decoded %+v, %q", p.VRRP.Groups[1].Unicast, p.Management.Discovery)
	}
	if strings.Contains(string(mustEncode(t, directorPlan())), "unicast") {
		t.Error("a multicast plan mentions unicast: its encoding (and digest) changed")
	}
	for _, tc := range []struct {
		name   string
		change func(*Plan)
		want   string
	}{
		{"min TTL 0", func(p *Plan) { p.VRRP.Groups[0].Unicast.MinTTL = 0 }, "vrrp.groups[0].unicast.minTTL: 0 is outside 1..255"},
		{"min TTL 256", func(p *Plan) { p.VRRP.Groups[0].Unicast.MinTTL = 256 }, "vrrp.groups[0].unicast.minTTL: 256"},
		{"multicast peer", func(p *Plan) { p.VRRP.Groups[0].Peers[1].Address = netip.MustParseAddr("224.0.0.18") },
			"vrrp.groups[0].peers[1].address: 224.0.0.18 is not a unicast ipv4 address"},
		{"peer of the other family", func(p *Plan) { p.VRRP.Groups[1].Peers[0].Address = netip.MustParseAddr("192.0.2.12") },
			"vrrp.groups[1].peers[0].address: 192.0.2.12 is not a unicast ipv6 address"},
		{"global source not on the interface", func(p *Plan) { p.VRRP.Groups[1].Source = netip.MustParseAddr("2001:db8::99") },
			"vrrp.groups[1].source: 2001:db8::99 is not an address of interface eth0"},
		{"multicast group with a global source", func(p *Plan) { p.VRRP.Groups[1].Unicast = nil },
			"vrrp.groups[1].source: 2001:db8::11 is not an IPv6 link-local address"},
		{"multicast group with a global peer", func(p *Plan) {
			g := &p.VRRP.Groups[1]
			g.Unicast, g.Source = nil, netip.MustParseAddr("fe80::11")
		}, "vrrp.groups[1].peers[0].address: 2001:db8::12 is not a valid ipv6 advertiser address"},
		{"discovery mode", func(p *Plan) { p.Management.Discovery = "anycast" }, `management.discovery: "anycast" is not broadcast or unicast`},
		{"broadcast discovery needs a broadcast address", func(p *Plan) { p.Management.Discovery = DiscoveryBroadcast },
			"management.broadcast: invalid IP is not an IPv4 address"},
	} {
		p := unicastPlan()
		tc.change(p)
		_, err := Decode(mustEncode(t, p))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Unicast discovery on a /31: the "broadcast" may be a member's address.
	p = unicastPlan()
	p.Management.Broadcast = netip.MustParseAddr("192.0.2.12")
	if _, err := Decode(mustEncode(t, p)); err != nil {
		t.Errorf("unicast discovery with a member's address as broadcast: %v", err)
	}
}
