package node

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// A simulation of several nodes (the pure Node, not only its VRRP engine)
// on two segments, eth0 and eth1, on a simulated clock: plans loaded and
// reloaded, links cut and restored. What runtime/vrrp/sim checks for the
// engine, this checks for what the node adds: Fault and group membership.

// simNode is one node with the executor's part faked: every setup step
// works, adverts go onto the simulated segments.
type simNode struct {
	name  string
	prio  int
	node  *Node
	links map[string]bool // interface -> up
	plan  *plan.Plan      // the last plan loaded
	vips  map[netip.Prefix]bool
}

type simEvent struct {
	at   time.Time
	seq  uint64
	to   int
	sock Socket
	pkt  VRRPPacket
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type nodeSim struct {
	t           *testing.T
	now         time.Time
	rng         *rand.Rand
	nodes       []*simNode
	queue       simQueue
	seq         uint64
	transitions []string // node/group: from->to, with time
}

// simGroup describes a group of the simulated cluster.
type simGroup struct {
	name  string
	vrid  int
	iface string
}

func newNodeSim(t *testing.T, seed uint64, prios []int) *nodeSim {
	s := &nodeSim{t: t, now: t0, rng: rand.New(rand.NewPCG(seed, 7))}
	for i, p := range prios {
		s.nodes = append(s.nodes, &simNode{name: fmt.Sprintf("n%d", i), prio: p, node: New(Config{}),
			links: map[string]bool{"eth0": true, "eth1": true}, vips: map[netip.Prefix]bool{}})
	}
	return s
}

func simAddr(iface string, node int) netip.Addr {
	if iface == "eth1" {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + node)})
	}
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + node)})
}

func simVIP(g simGroup) netip.Prefix {
	if g.iface == "eth1" {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + g.vrid%100)}), 24)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + g.vrid%100)}), 24)
}

// planFor is node i's plan with the given groups (10 ms adverts).
func (s *nodeSim) planFor(i int, groups []simGroup) []byte {
	n := s.nodes[i]
	p := &plan.Plan{APIVersion: plan.APIVersion, Cluster: "sim", Node: n.name, Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{
			{Name: "eth0", Segment: "a", Addresses: []netip.Prefix{netip.PrefixFrom(simAddr("eth0", i), 24)}},
			{Name: "eth1", Segment: "b", Addresses: []netip.Prefix{netip.PrefixFrom(simAddr("eth1", i), 24)}},
		},
		VRRP: &plan.VRRP{Priority: n.prio, Announce: plan.Announce{Count: 1}}}
	for _, g := range groups {
		pg := plan.Group{Name: g.name, VRID: g.vrid, Interface: g.iface, Family: plan.FamilyIPv4, Version: 3,
			AdvertInterval: plan.Duration(10 * time.Millisecond), Preempt: true, AcceptMode: true,
			Checksum: plan.ChecksumPseudoHeader, Source: simAddr(g.iface, i), VIPs: []netip.Prefix{simVIP(g)}}
		for j := range s.nodes {
			if j != i {
				pg.Peers = append(pg.Peers, plan.Peer{Name: s.nodes[j].name, Address: simAddr(g.iface, j), Priority: s.nodes[j].prio})
			}
		}
		p.VRRP.Groups = append(p.VRRP.Groups, pg)
	}
	b, err := plan.Encode(p)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// load gives node i a plan with groups now.
func (s *nodeSim) load(i int, groups []simGroup) {
	s.step(i, PlanFile{Data: s.planFor(i, groups), Forced: true})
}

// setLink cuts or restores node i's link on iface.
func (s *nodeSim) setLink(i int, iface string, up bool) {
	n := s.nodes[i]
	n.links[iface] = up
	var links []LinkState
	for k, name := range []string{"eth0", "eth1"} {
		links = append(links, LinkState{Index: k + 1, Name: name, Up: n.links[name]})
	}
	s.step(i, LinkReport{Full: true, Links: links})
}

// step feeds node i and carries out its effects as a well-behaved host.
func (s *nodeSim) step(i int, ev Event) {
	n := s.nodes[i]
	var next []Event
	for _, e := range n.node.Step(s.now, ev) {
		switch e := e.(type) {
		case Prepare:
			var res []Result
			for _, st := range e.Steps {
				res = append(res, Result{Step: st})
			}
			next = append(next, Prepared{Txn: e.Txn, Results: res})
		case SendAdvert:
			s.broadcast(i, e)
		case AddVIP:
			n.vips[e.VIP] = true
		case RemoveVIP:
			delete(n.vips, e.VIP)
		case Transition:
			s.transitions = append(s.transitions, fmt.Sprintf("%v %s/%s %v->%v", s.now.Sub(t0), n.name, e.Group, e.From, e.To))
		}
	}
	for _, ev := range next {
		s.step(i, ev)
	}
}

// broadcast delivers an advert to every other node whose link on that
// interface is up, as the sender's is, after 0.1..1 ms.
func (s *nodeSim) broadcast(from int, a SendAdvert) {
	if !s.nodes[from].links[a.Socket.Interface] {
		return // a dead link carries nothing
	}
	for j, n := range s.nodes {
		if j == from || !n.links[a.Socket.Interface] {
			continue
		}
		sock := Socket{Interface: a.Socket.Interface, Source: simAddr(a.Socket.Interface, j)}
		s.seq++
		delay := 100*time.Microsecond + time.Duration(s.rng.Int64N(int64(900*time.Microsecond)))
		heap.Push(&s.queue, &simEvent{at: s.now.Add(delay), seq: s.seq, to: j, sock: sock,
			pkt: VRRPPacket{Socket: sock, Src: a.Socket.Source, Dst: vrrp.GroupIPv4, TTL: 255, Data: a.Data}})
	}
}

// runFor runs d of simulated time: deliveries and ticks in order.
func (s *nodeSim) runFor(d time.Duration) {
	until := s.now.Add(d)
	for {
		next, who := until, -1
		for i, n := range s.nodes {
			if dl := n.node.Deadline(); !dl.IsZero() && dl.Before(next) {
				next, who = dl, i
			}
		}
		if len(s.queue) > 0 && !s.queue[0].at.After(next) && s.queue[0].at.Before(until) {
			ev := heap.Pop(&s.queue).(*simEvent)
			s.now = ev.at
			s.step(ev.to, ev.pkt)
			continue
		}
		if who < 0 {
			s.now = until
			return
		}
		s.now = next
		s.step(who, Tick{})
	}
}

// actives lists the nodes whose node state is Active.
func (s *nodeSim) actives() []string {
	var out []string
	for _, n := range s.nodes {
		if st := n.node.Status(); st != nil && st.State == "Active" {
			out = append(out, n.name)
		}
	}
	return out
}

// holders lists who holds each VIP.
func (s *nodeSim) holders() map[netip.Prefix][]string {
	out := map[netip.Prefix][]string{}
	for _, n := range s.nodes {
		for v := range n.vips {
			out[v] = append(out[v], n.name)
		}
	}
	return out
}

func (s *nodeSim) fail(seed uint64, format string, a ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d at %v: %s\ntransitions:\n%s", seed, s.now.Sub(t0), fmt.Sprintf(format, a...), joinLines(s.transitions))
}

func joinLines(l []string) string {
	if len(l) > 40 {
		l = append([]string{"..."}, l[len(l)-40:]...)
	}
	out := ""
	for _, x := range l {
		out += x + "\n"
	}
	return out
}

// randomPrios gives 2..4 nodes distinct priorities.
func randomPrios(rng *rand.Rand) []int {
	n := 2 + rng.IntN(3)
	var prios []int
	for len(prios) < n {
		p := 1 + rng.IntN(254)
		if !slices.Contains(prios, p) {
			prios = append(prios, p)
		}
	}
	return prios
}

func best(prios []int, except ...int) int {
	b := -1
	for i, p := range prios {
		if !slices.Contains(except, i) && (b < 0 || p > prios[b]) {
			b = i
		}
	}
	return b
}

const simSeeds = 200

var twoLegs = []simGroup{{"inside", 51, "eth0"}, {"outside", 52, "eth1"}}

// TestSimFaultHoldsWithoutFlapping: the Active's link on one segment dies.
// The best other node takes every group and keeps them: no transition
// anywhere for 50 Active_Down_Intervals, the faulty node holds no VIP.
// When the link is back, the best node is Active again, alone.
func TestSimFaultHoldsWithoutFlapping(t *testing.T) {
	for seed := uint64(1); seed <= simSeeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		prios := randomPrios(rng)
		s := newNodeSim(t, seed, prios)
		for i := range s.nodes {
			s.setLink(i, "eth0", true)
			s.load(i, twoLegs)
		}
		s.runFor(time.Second)
		top := best(prios)
		if got := s.actives(); !slices.Equal(got, []string{s.nodes[top].name}) {
			s.fail(seed, "Active after start: %v, want %s (priorities %v)", got, s.nodes[top].name, prios)
		}
		s.setLink(top, []string{"eth0", "eth1"}[rng.IntN(2)], false)
		s.runFor(500 * time.Millisecond)
		second := best(prios, top)
		if got := s.actives(); !slices.Equal(got, []string{s.nodes[second].name}) {
			s.fail(seed, "Active with %s's link down: %v, want %s", s.nodes[top].name, got, s.nodes[second].name)
		}
		if st := s.nodes[top].node.Status(); st.State != StateFault || len(s.nodes[top].vips) != 0 {
			s.fail(seed, "the node with the dead link: %s, VIPs %v", st.State, s.nodes[top].vips)
		}
		before := len(s.transitions)
		s.runFor(50 * vrrp.ActiveDownInterval(1, 10*time.Millisecond))
		if len(s.transitions) != before {
			s.fail(seed, "%d transitions while the link stays down (flapping)", len(s.transitions)-before)
		}
		for v, h := range s.holders() {
			if !slices.Equal(h, []string{s.nodes[second].name}) {
				s.fail(seed, "VIP %v held by %v", v, h)
			}
		}
		s.setLink(top, "eth0", true)
		s.setLink(top, "eth1", true)
		s.runFor(time.Second)
		if got := s.actives(); !slices.Equal(got, []string{s.nodes[top].name}) {
			s.fail(seed, "Active after the link came back: %v, want %s", got, s.nodes[top].name)
		}
	}
}

// TestSimGroupAddedAndRemoved: a reload adds a group to every node, one
// after another in random order and at random times; the Active's new
// group joins as Active, so no other node ever holds the new VIP and no
// group that was there moves. Removing it again moves nothing either.
func TestSimGroupAddedAndRemoved(t *testing.T) {
	added := simGroup{"outside", 52, "eth1"}
	for seed := uint64(1); seed <= simSeeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 2))
		prios := randomPrios(rng)
		s := newNodeSim(t, seed, prios)
		for i := range s.nodes {
			s.load(i, twoLegs[:1])
		}
		s.runFor(time.Second)
		top := best(prios)
		before := len(s.transitions)
		for _, i := range rng.Perm(len(s.nodes)) {
			s.runFor(time.Duration(rng.IntN(200)) * time.Millisecond) // a roll-out: longer than an Active_Down_Interval
			s.load(i, twoLegs)
			// Nobody but the Active ever holds the new VIP.
			for v, h := range s.holders() {
				if v == simVIP(added) && !slices.Equal(h, []string{s.nodes[top].name}) && len(h) > 0 {
					s.fail(seed, "the added VIP %v is held by %v", v, h)
				}
			}
		}
		s.runFor(time.Second)
		if got := s.actives(); !slices.Equal(got, []string{s.nodes[top].name}) {
			s.fail(seed, "Active after the reloads: %v, want %s", got, s.nodes[top].name)
		}
		for _, tr := range s.transitions[before:] {
			if !strings.Contains(tr, "/outside ") {
				s.fail(seed, "a transition of a group the reload did not touch: %s", tr)
			}
		}
		if h := s.holders()[simVIP(added)]; !slices.Equal(h, []string{s.nodes[top].name}) {
			s.fail(seed, "the added VIP held by %v, want the Active %s", h, s.nodes[top].name)
		}
		before = len(s.transitions)
		for _, i := range rng.Perm(len(s.nodes)) {
			s.runFor(time.Duration(rng.IntN(200)) * time.Millisecond) // a roll-out: longer than an Active_Down_Interval
			s.load(i, twoLegs[:1])
		}
		s.runFor(time.Second)
		for _, tr := range s.transitions[before:] {
			if !strings.Contains(tr, "/outside ") {
				s.fail(seed, "a removal moved another group: %s", tr)
			}
		}
		if got := s.actives(); !slices.Equal(got, []string{s.nodes[top].name}) {
			s.fail(seed, "Active after the removal: %v", got)
		}
	}
}
