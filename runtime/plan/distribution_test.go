package plan

import (
	"net/netip"
	"strings"
	"testing"
)

func withDistribution(p *Plan) *Plan {
	p.Management.Version = 2
	p.Distribution = &Distribution{
		Mode: DistributionL2, VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Ports: []int{80, 443},
		ProxyPort: 9090, Interface: "eth0", Scans: true, VIPInterface: "eth0", Slots: 4096, Seed: 7,
		DirectorsScan: true,
		Nodes: []DistributionNode{
			{Name: "dir-a", Address: netip.MustParseAddr("192.0.2.11"), Director: true},
			{Name: "scan-1", Address: netip.MustParseAddr("192.0.2.21")},
		},
	}
	return p
}

func TestDistributionValid(t *testing.T) {
	p := withDistribution(directorPlan())
	p.Digest, _ = ComputeDigest(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b := mustEncode(t, p)
	if _, err := Decode(b); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func TestDistributionErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(p *Plan)
		want string
	}{
		{"mode", func(p *Plan) { p.Distribution.Mode = "dsr" }, "distribution.mode"},
		{"no vips", func(p *Plan) { p.Distribution.VIPs = nil }, "distribution.vips"},
		{"ipv6 vip", func(p *Plan) { p.Distribution.VIPs = []netip.Addr{netip.MustParseAddr("2001:db8::1")} }, "distribution.vips[0]"},
		{"vip not of a group", func(p *Plan) { p.Distribution.VIPs = []netip.Addr{netip.MustParseAddr("192.0.2.99")} }, "not a VIP of a group"},
		{"port twice", func(p *Plan) { p.Distribution.Ports = []int{80, 80} }, "appears twice"},
		{"proxy port", func(p *Plan) { p.Distribution.ProxyPort = 0 }, "outside 1..65535"},
		{"interface", func(p *Plan) { p.Distribution.Interface = "eth9" }, "distribution.interface"},
		{"slots", func(p *Plan) { p.Distribution.Slots = 10 }, "distribution.slots"},
		{"no nodes", func(p *Plan) { p.Distribution.Nodes = nil }, "no node takes a share"},
		{"self missing", func(p *Plan) { p.Distribution.Nodes = p.Distribution.Nodes[1:] }, "not among distribution.nodes"},
		{"no management", func(p *Plan) { p.Management = nil }, "needs the management protocol"},
		{"management v1", func(p *Plan) { p.Management.Version = 1 }, "needs version 2"},
		{"scanner with nodes", func(p *Plan) { p.VRRP = nil; p.Management.Members[0].Director = false }, "for directors"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := withDistribution(directorPlan())
			c.edit(p)
			p.Digest, _ = ComputeDigest(p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, c.want)
			}
		})
	}
}
