package distributor

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/plan"
)

type fakeSource struct {
	mu  sync.Mutex
	st  mgmt.Status
	chg chan struct{}
}

func (f *fakeSource) Snapshot() mgmt.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Nodes = append([]engine.Node(nil), f.st.Nodes...)
	return st
}
func (f *fakeSource) Changes() <-chan struct{} { return f.chg }

// set replaces node name's row and signals a change.
func (f *fakeSource) set(active bool, rows ...engine.Node) {
	f.mu.Lock()
	f.st.Active = active
	for _, r := range rows {
		found := false
		for i := range f.st.Nodes {
			if f.st.Nodes[i].Name == r.Name {
				f.st.Nodes[i], found = r, true
			}
		}
		if !found {
			f.st.Nodes = append(f.st.Nodes, r)
		}
	}
	f.mu.Unlock()
	select {
	case f.chg <- struct{}{}:
	default:
	}
}

type fakeKernel struct {
	mu      sync.Mutex
	applied []forward.State
	cleaned int
	fail    bool
	neigh   map[netip.Addr]net.HardwareAddr
}

func (k *fakeKernel) Apply(s forward.State) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return errors.New("injected")
	}
	k.applied = append(k.applied, s)
	return nil
}
func (k *fakeKernel) Clean() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cleaned++
	k.applied = append(k.applied, forward.State{})
	return nil
}
func (k *fakeKernel) Neighbors(string) (map[netip.Addr]net.HardwareAddr, error) { return k.neigh, nil }
func (k *fakeKernel) Link(string) (int, net.HardwareAddr, error) {
	return 7, net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil
}
func (k *fakeKernel) last() forward.State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.applied[len(k.applied)-1]
}

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

// eventually waits for the kernel's last state to satisfy cond.
func eventually(t *testing.T, k *fakeKernel, what string, cond func(forward.State) bool) forward.State {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if s := k.last(); cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; last state %+v", what, k.last())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func owners(s forward.State) map[string]int {
	c := map[string]int{}
	for _, tg := range s.Director.Slots {
		c[tg.MAC.String()]++
	}
	return c
}

func TestDistributorFollowsTheTable(t *testing.T) {
	src := &fakeSource{chg: make(chan struct{}, 1)}
	k := &fakeKernel{}
	d, err := New(testPlan(), src, k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if k.cleaned != 1 {
		t.Fatal("leftovers not cleaned at start")
	}
	// Not Active: only the node rule.
	s := eventually(t, k, "node rule", func(s forward.State) bool { return s.Node != nil && s.Director == nil })
	if s.Node.ProxyPort != 9090 {
		t.Fatalf("node rule %+v", s.Node)
	}

	// Active: hold until every node has answered.
	d.SetActive(true)
	src.set(true, row("dir-a", true, ""))
	eventually(t, k, "hold", func(s forward.State) bool { return s.Director != nil && s.Director.Hold })
	src.set(true, row("scan-1", true, "02:00:00:00:00:11"), row("scan-2", true, "02:00:00:00:00:12"))
	if st := d.Status(); !st.Hold {
		t.Fatalf("hold ended with scan-3 unheard: %+v", st)
	}
	src.set(true, row("scan-3", true, "02:00:00:00:00:13"))
	s = eventually(t, k, "mapping", func(s forward.State) bool { return s.Director != nil && !s.Director.Hold })
	c := owners(s)
	if len(c) != 4 || c[""] == 0 { // three MACs and the director's own (empty) slots
		t.Fatalf("slots by MAC %v", c)
	}
	st := d.Status()
	if st.Digest == "" || st.Counts["eligible"] != 4 || !st.Active {
		t.Fatalf("status %+v", st)
	}

	// scan-2 down: only its slots move.
	src.set(true, row("scan-2", false, "02:00:00:00:00:12"))
	s2 := eventually(t, k, "scan-2 out", func(s forward.State) bool { return s.Director != nil && owners(s)["02:00:00:00:00:12"] == 0 })
	for i := range s.Director.Slots {
		before, after := s.Director.Slots[i].MAC.String(), s2.Director.Slots[i].MAC.String()
		if before != after && before != "02:00:00:00:00:12" {
			t.Fatalf("slot %d moved from %s to %s", i, before, after)
		}
	}
	if d.Status().Counts[distrib.ReasonDown] != 1 {
		t.Fatalf("counts %v", d.Status().Counts)
	}

	// A bad MAC never gets traffic.
	src.set(true, row("scan-2", true, "ff:ff:ff:ff:ff:ff"))
	time.Sleep(20 * time.Millisecond)
	if owners(k.last())["ff:ff:ff:ff:ff:ff"] != 0 || d.Status().Counts[distrib.ReasonBadMAC] != 1 {
		t.Fatalf("broadcast MAC got slots: %v %v", owners(k.last()), d.Status().Counts)
	}

	// A failing transaction keeps the last state and says so.
	k.mu.Lock()
	k.fail = true
	k.mu.Unlock()
	src.set(true, row("scan-2", true, "02:00:00:00:00:12"))
	deadline := time.Now().Add(2 * time.Second)
	for d.Status().Error == "" && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if d.Status().Error == "" {
		t.Fatal("a failed transaction is not in the status")
	}
	k.mu.Lock()
	k.fail = false
	k.mu.Unlock()

	// Handover: the director's table goes, the node rule stays.
	d.SetActive(false)
	eventually(t, k, "handover", func(s forward.State) bool { return s.Director == nil && s.Node != nil })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if s := k.last(); s.Director != nil || s.Node != nil {
		t.Fatalf("after Close: %+v", s)
	}
}

// TestHoldEndsAtTheWindow: a node that never answers does not hold the
// traffic beyond the first-answer window.
func TestHoldEndsAtTheWindow(t *testing.T) {
	src := &fakeSource{chg: make(chan struct{}, 1)}
	k := &fakeKernel{}
	p := testPlan()
	p.Management.DiscoveryInterval = plan.Duration(200 * time.Millisecond)
	d, err := New(p, src, k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	d.SetActive(true)
	src.set(true, row("dir-a", true, ""), row("scan-1", true, "02:00:00:00:00:11"))
	eventually(t, k, "hold ends", func(s forward.State) bool { return s.Director != nil && !s.Director.Hold })
	if took := time.Since(start); took < 50*time.Millisecond || took > 2*time.Second {
		t.Fatalf("hold lasted %v, window is %v", took, distrib.HoldUntil(start, 200*time.Millisecond).Sub(start))
	}
	if c := d.Status().Counts; c["eligible"] != 2 || c[distrib.ReasonDown] != 2 {
		t.Fatalf("counts %v", c)
	}
}
