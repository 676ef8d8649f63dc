package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// BenchmarkActiveTick is the node's work for one advert of an Active at
// 10 ms adverts: the tick, the advert, the effects (the agent's CPU at
// 10 ms adverts is this plus the executor's system calls).
func BenchmarkActiveTick(b *testing.B) {
	n := activeNode(b)
	now := t0
	sent := 0
	for b.Loop() {
		now = n.Deadline()
		for _, e := range n.Step(now, Tick{}) {
			if _, ok := e.(SendAdvert); ok {
				sent++
			}
		}
	}
	if sent < b.N {
		b.Fatalf("%d adverts in %d ticks", sent, b.N)
	}
}

// The same tick allocates nothing (at 10 ms adverts every allocation is
// paid with the caches cold).
func TestActiveTickAllocatesNothing(t *testing.T) {
	n := activeNode(t)
	sent := 0
	allocs := testing.AllocsPerRun(100, func() {
		for _, e := range n.Step(n.Deadline(), Tick{}) {
			if _, ok := e.(SendAdvert); ok {
				sent++
			}
		}
	})
	if allocs != 0 || sent < 101 {
		t.Errorf("%v allocations per tick, %d adverts in 101 ticks; want 0 and one each", allocs, sent)
	}
}

// activeNode is an Active node of one IPv4 group at 10 ms adverts.
func activeNode(b testing.TB) *Node {
	p := &plan.Plan{APIVersion: plan.APIVersion, Cluster: "edge", Node: "a", Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{{Name: "eth0", Segment: "s", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.11/24")}}},
		VRRP: &plan.VRRP{Priority: 255, Announce: plan.Announce{Count: 1}, Groups: []plan.Group{{
			Name: "g", VRID: 51, Interface: "eth0", Family: plan.FamilyIPv4, Version: 3, AcceptMode: true,
			AdvertInterval: plan.Duration(10 * time.Millisecond), Checksum: plan.ChecksumPseudoHeader,
			Source: netip.MustParseAddr("192.0.2.11"), VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
			Peers: []plan.Peer{{Name: "b", Address: netip.MustParseAddr("192.0.2.12"), Priority: 100}},
		}}},
	}
	data, err := plan.Encode(p)
	if err != nil {
		b.Fatal(err)
	}
	n := New(Config{})
	now := t0
	for _, e := range n.Step(now, PlanFile{Data: data, Forced: true}) {
		if pr, ok := e.(Prepare); ok {
			var res []Result
			for _, s := range pr.Steps {
				res = append(res, Result{Step: s})
			}
			n.Step(now, Prepared{Txn: pr.Txn, Results: res})
		}
	}
	if st := n.Status(); st == nil || st.State != "Active" {
		b.Fatalf("not Active: %+v", st)
	}
	return n
}
