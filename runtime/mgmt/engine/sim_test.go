package engine

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

var (
	t0       = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	interval = time.Second
	testKey  = bytes.Repeat([]byte{0x5a}, 32)
)

var testMembers = []Member{
	{Name: "dir-a", Address: netip.MustParseAddr("192.0.2.11"), Director: true},
	{Name: "dir-b", Address: netip.MustParseAddr("192.0.2.12"), Director: true},
	{Name: "scan-1", Address: netip.MustParseAddr("192.0.2.21")},
	{Name: "scan-2", Address: netip.MustParseAddr("192.0.2.22")},
	{Name: "scan-3", Address: netip.MustParseAddr("192.0.2.23")},
}

func addrOf(name string) netip.Addr {
	for _, m := range testMembers {
		if m.Name == name {
			return m.Address
		}
	}
	panic("no member " + name)
}

func testConfig(name string) Config {
	a := addrOf(name)
	return Config{
		Cluster: "edge", Node: name, Address: a, Broadcast: netip.MustParseAddr("192.0.2.255"),
		Addresses: []netip.Prefix{netip.PrefixFrom(a, 24)},
		Digest:    [wire.DigestLen]byte{0xd1},
		Interval:  interval, DeadAfter: 3,
		Keys:    [][]byte{testKey},
		Members: testMembers,
	}
}

func newEngine(t testing.TB, name string, boot uint64) *Engine {
	t.Helper()
	e, err := New(testConfig(name), boot, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sim is a management segment on a fake clock: every Send is delivered at
// once (broadcast to every other node, unicast to its address), every
// timer fires exactly at its deadline.
type sim struct {
	t     testing.TB
	now   time.Time
	nodes map[netip.Addr]*Engine
	log   []string // NodeChanged / DirectorHeard / DirectorLost / Dropped, with times
	sent  []Send
	// tap, when set, sees every datagram before delivery.
	tap func(from netip.Addr, s Send)
}

func newSim(t testing.TB, names ...string) *sim {
	s := &sim{t: t, now: t0, nodes: map[netip.Addr]*Engine{}}
	for i, n := range names {
		s.nodes[addrOf(n)] = newEngine(t, n, uint64(100+i))
	}
	return s
}

func (s *sim) engine(name string) *Engine { return s.nodes[addrOf(name)] }

func (s *sim) step(from netip.Addr, ev Event) {
	e := s.nodes[from]
	if e == nil {
		return
	}
	s.handle(from, e.Step(s.now, ev))
}

func (s *sim) handle(from netip.Addr, acts []Action) {
	at := s.now.Sub(t0)
	for _, a := range acts {
		switch a := a.(type) {
		case Send:
			s.sent = append(s.sent, a)
			if s.tap != nil {
				s.tap(from, a)
			}
			if a.To == netip.MustParseAddr("192.0.2.255") {
				for _, addr := range s.sortedAddrs() {
					if addr != from {
						s.step(addr, Packet{Src: from, Data: a.Data})
					}
				}
			} else {
				s.step(a.To, Packet{Src: from, Data: a.Data})
			}
		case NodeChanged:
			s.log = append(s.log, fmt.Sprintf("%v %s: %s %s->%s", at, name(from), a.Name, a.From, a.To))
		case DirectorHeard:
			s.log = append(s.log, fmt.Sprintf("%v %s: heard %s", at, name(from), a.Name))
		case DirectorLost:
			s.log = append(s.log, fmt.Sprintf("%v %s: lost %s", at, name(from), a.Name))
		case Dropped:
			s.log = append(s.log, fmt.Sprintf("%v %s: dropped %s from %v", at, name(from), a.Reason, a.Src))
		}
	}
}

func name(a netip.Addr) string {
	for _, m := range testMembers {
		if m.Address == a {
			return m.Name
		}
	}
	return a.String()
}

func (s *sim) sortedAddrs() []netip.Addr {
	var as []netip.Addr
	for a := range s.nodes {
		as = append(as, a)
	}
	slices.SortFunc(as, netip.Addr.Compare)
	return as
}

// run advances the clock to until, firing every deadline on the way.
func (s *sim) run(until time.Duration) {
	end := t0.Add(until)
	for {
		var next time.Time
		var who netip.Addr
		for _, a := range s.sortedAddrs() {
			d := s.nodes[a].Deadline()
			if !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next, who = d, a
			}
		}
		if next.IsZero() || next.After(end) {
			s.now = end
			return
		}
		if next.After(s.now) {
			s.now = next
		}
		s.step(who, Tick{})
	}
}

// status returns name -> status in the table of node.
func (s *sim) status(node string) map[string]Status {
	m := map[string]Status{}
	for _, r := range s.engine(node).Table() {
		m[r.Name] = r.Status
	}
	return m
}

func (s *sim) row(node, of string) Node {
	for _, r := range s.engine(node).Table() {
		if r.Name == of {
			return r
		}
	}
	s.t.Fatalf("%s has no row %s", node, of)
	return Node{}
}

func (s *sim) grep(substr string) []string {
	var out []string
	for _, l := range s.log {
		if bytes.Contains([]byte(l), []byte(substr)) {
			out = append(out, l)
		}
	}
	return out
}
