package distributor

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/plan"
)

func testPlan() *plan.Plan {
	nodes := []plan.DistributionNode{{Name: "dir-a", Address: netip.MustParseAddr("192.0.2.1"), Director: true}}
	for i, n := range []string{"scan-1", "scan-2", "scan-3"} {
		nodes = append(nodes, plan.DistributionNode{Name: n, Address: netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)})})
	}
	return &plan.Plan{
		Node:       "dir-a",
		Interfaces: []plan.Interface{{Name: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}},
		VRRP:       &plan.VRRP{Priority: 200},
		Management: &plan.Management{DiscoveryInterval: plan.Duration(time.Second), Version: 2},
		Distribution: &plan.Distribution{Mode: plan.DistributionL2, VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")},
			Ports: []int{80}, ProxyPort: 9090, Interface: "eth0", Scans: true, VIPInterface: "eth0",
			Slots: 64, Seed: 9, DirectorsScan: true, Nodes: nodes},
	}
}

func row(name string, up bool, mac string) engine.Node {
	r := engine.Node{Name: name, Status: engine.StatusUp, Health: "available", Reported: true, Serving: true, MAC: mac}
	if !up {
		r.Status = engine.StatusDown
	}
	return r
}

func table(rows ...engine.Node) mgmt.Status { return mgmt.Status{Active: true, Nodes: rows} }

func owners(s forward.State) map[string]int {
	c := map[string]int{}
	for _, tg := range s.Director.Slots {
		c[tg.MAC.String()]++
	}
	return c
}

func TestNotActiveOnlyTheNodeRule(t *testing.T) {
	st, status, _ := Desired(Input{Plan: testPlan()})
	if st.Director != nil || st.Node == nil || st.Node.ProxyPort != 9090 || !status.NodeRule || status.Active {
		t.Fatalf("state %+v status %+v", st, status)
	}
	p := testPlan()
	p.Distribution.Mode = plan.DistributionNAT
	if st, _, _ := Desired(Input{Plan: p}); st.Node != nil {
		t.Fatal("nat nodes need no redirect")
	}
	if st, _, _ := Desired(Input{Plan: &plan.Plan{}}); st.Node != nil || st.Director != nil {
		t.Fatal("no distribution, no state")
	}
}

func TestActiveMapsAndLeavesOut(t *testing.T) {
	p := testPlan()
	all := table(row("dir-a", true, ""), row("scan-1", true, "02:00:00:00:00:11"),
		row("scan-2", true, "02:00:00:00:00:12"), row("scan-3", true, "02:00:00:00:00:13"))
	st, status, _ := Desired(Input{Plan: p, Active: true, Table: all})
	c := owners(st)
	if len(c) != 4 || c[""] == 0 || status.Counts["eligible"] != 4 || status.Digest == "" {
		t.Fatalf("slots by MAC %v, status %+v", c, status)
	}
	if st.Director.Self != netip.MustParseAddr("192.0.2.1") || !st.Director.L2 || st.Director.Hold {
		t.Fatalf("director %+v", st.Director)
	}

	// scan-2 down: only its slots move.
	down := table(all.Nodes[0], all.Nodes[1], row("scan-2", false, "02:00:00:00:00:12"), all.Nodes[3])
	st2, status2, _ := Desired(Input{Plan: p, Active: true, Table: down})
	for i := range st.Director.Slots {
		a, b := st.Director.Slots[i].MAC.String(), st2.Director.Slots[i].MAC.String()
		if a != b && a != "02:00:00:00:00:12" {
			t.Fatalf("slot %d moved from %s to %s", i, a, b)
		}
	}
	if status2.Counts[distrib.ReasonDown] != 1 || owners(st2)["02:00:00:00:00:12"] != 0 {
		t.Fatalf("scan-2 down: %v %v", status2.Counts, owners(st2))
	}

	// A broadcast MAC never gets traffic; a MAC the neighbour table
	// contradicts neither.
	bad := table(all.Nodes[0], all.Nodes[1], row("scan-2", true, "ff:ff:ff:ff:ff:ff"), all.Nodes[3])
	neigh := map[netip.Addr]net.HardwareAddr{netip.MustParseAddr("192.0.2.13"): {2, 0, 0, 0, 0, 0x99}}
	st3, status3, _ := Desired(Input{Plan: p, Active: true, Table: bad, Neighbors: neigh})
	if status3.Counts[distrib.ReasonBadMAC] != 1 || status3.Counts[distrib.ReasonMACMismatch] != 1 ||
		owners(st3)["ff:ff:ff:ff:ff:ff"] != 0 || owners(st3)["02:00:00:00:00:13"] != 0 {
		t.Fatalf("bad MACs: %v %v (%s)", status3.Counts, owners(st3), status3.Left())
	}

	// Hold keeps the table but drops.
	st4, status4, _ := Desired(Input{Plan: p, Active: true, Table: all, Hold: true})
	if !st4.Director.Hold || !status4.Hold {
		t.Fatal("hold not in the state")
	}
	// The table of a node that is not Active is not live: nobody is up.
	stale := all
	stale.Active = false
	if _, s, _ := Desired(Input{Plan: p, Active: true, Table: stale}); s.Counts["eligible"] != 0 {
		t.Fatalf("a stale table made nodes eligible: %v", s.Counts)
	}
}

func TestAllHeard(t *testing.T) {
	p := testPlan()
	part := table(row("dir-a", true, ""), row("scan-1", true, "02:00:00:00:00:11"))
	if AllHeard(p, part) {
		t.Fatal("scan-2 and scan-3 have not answered")
	}
	part.Nodes = append(part.Nodes, row("scan-2", true, ""), engine.Node{Name: "scan-3", Health: "leaving", Status: engine.StatusDown})
	if !AllHeard(p, part) {
		t.Fatal("every node has answered (one is leaving)")
	}
}
