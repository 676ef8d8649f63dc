package compiler

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/plan"
)

const unicastRepo = `package clusters

segments: vpc: {
	cidrs: ["192.0.2.0/24", "2001:db8::/64"]
	protected: true
}

clusters: cloud: {
	mode: "ha-proxy"
	nodes: {
		"dir-a": {priority: 200, managementIP: "192.0.2.11", interfaces: eth0: {segment: "vpc", addresses: ["192.0.2.11", "2001:db8::11"], linkLocal: "fe80::11"}}
		"dir-b": {priority: 100, managementIP: "192.0.2.12", interfaces: eth0: {segment: "vpc", addresses: ["192.0.2.12", "2001:db8::12"], linkLocal: "fe80::12"}}
		"scan-1": {managementIP: "192.0.2.21", interfaces: eth0: {segment: "vpc", addresses: ["192.0.2.21"]}}
	}
	vrrp: {
		authentication: {keys: [{id: 1, file: "/etc/mwgc/vrrp-1.key"}], activeKey: 1}
		groups: {
			v4: {
				vrid: 51, segment: "vpc", vips: ["192.0.2.10"], checksum: "pseudo-header"
				transport: "unicast"
				unicast: minTTL: 64
				externalPeers: "old-lb": {address: "203.0.113.30", priority: 50, authentication: true}
			}
			v6: {
				vrid: 51, segment: "vpc", vips: ["2001:db8::10"]
				transport: "unicast"
				unicast: sources: {"dir-a": "2001:db8::11", "dir-b": "2001:db8::12"}
			}
			plain: {vrid: 52, segment: "vpc", vips: ["192.0.2.20"]}
		}
	}
	management: {segment: "vpc", keyFile: "/etc/mwgc/mgmt.key", discovery: "unicast"}
}
`

// TestUnicastPlans: unicast groups compile to plans the agent accepts —
// peers from the other directors' (overridden) sources and the external
// peers, the minimum TTL, a global IPv6 source — beside a multicast group
// that stays as it was, and unicast discovery.
func TestUnicastPlans(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(unicastRepo), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	plans, err := res.Plans()
	if err != nil {
		var b bytes.Buffer
		WriteText(&b, res.Findings)
		t.Fatalf("%v\n%s", err, &b)
	}
	byNode := map[string]*plan.Plan{}
	for _, np := range plans {
		b, err := plan.Encode(np.Plan)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.Decode(b)
		if err != nil {
			t.Fatalf("%s: the agent refuses the plan: %v", np.Node, err)
		}
		byNode[np.Node] = p
	}
	a := byNode["dir-a"]
	type peer struct {
		Name    string
		Address string
	}
	got := map[string]any{}
	for _, g := range a.VRRP.Groups {
		var ps []peer
		for _, p := range g.Peers {
			ps = append(ps, peer{p.Name, p.Address.String()})
		}
		got[g.Name] = []any{g.Source.String(), g.Unicast, ps}
	}
	want := map[string]any{
		"v4":    []any{"192.0.2.11", &plan.Unicast{MinTTL: 64}, []peer{{"dir-b", "192.0.2.12"}, {"old-lb", "203.0.113.30"}}},
		"v6":    []any{"2001:db8::11", &plan.Unicast{MinTTL: 255}, []peer{{"dir-b", "2001:db8::12"}}},
		"plain": []any{"192.0.2.11", (*plan.Unicast)(nil), []peer{{"dir-b", "192.0.2.12"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dir-a's groups (source, unicast, peers) (-want +got):\n%s", diff)
	}
	for _, n := range []string{"dir-a", "scan-1"} {
		if m := byNode[n].Management; m.Discovery != plan.DiscoveryUnicast || m.Broadcast != netip.MustParseAddr("192.0.2.255") {
			t.Errorf("%s: discovery %q, broadcast %v", n, m.Discovery, m.Broadcast)
		}
	}
}
