// Package sim runs several VRRP nodes (each a vrrp.SyncGroup) on a simulated
// segment with loss, delay and partitions, on a simulated clock, so that
// properties of the protocol can be checked over many seeds.
package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Node is one router of the segment.
type Node struct {
	Name  string
	Group *vrrp.SyncGroup
	// Up is false after a crash: the node neither sends, receives nor ticks.
	Up        bool
	Partition int
	// Paused is true between Pause and Resume (SIGSTOP): the node does
	// nothing, packets for it queue up as in a socket buffer, and its
	// timers fire late.
	Paused bool
	held   []*event // packets that arrived while paused

	configs  []vrrp.Config
	nextTick time.Time
	gen      int // bumped on rebuild so events for the old routers are ignored
}

// Record is one transition of one member of a node.
type Record struct {
	At     time.Time
	Node   int
	Member int
	vrrp.Transition
}

// AnnounceRecord is one Announce action of one member of a node.
type AnnounceRecord struct {
	At     time.Time
	Node   int
	Member int
	Reason vrrp.AnnounceReason
}

// Segment is the simulated link and clock.
type Segment struct {
	Now   time.Time
	Nodes []*Node
	// Loss is the probability that one delivery (one receiver) is lost.
	Loss float64
	// DelayMin..DelayMax bounds the uniform one-way delay.
	DelayMin, DelayMax time.Duration
	// Transitions lists every transition in order.
	Transitions []Record
	// Sent counts adverts put on the wire per node.
	Sent []int
	// Violations lists broken invariants (members of a node disagreeing).
	Violations []string
	// VIPActions counts AddVIPs, RemoveVIPs and takeover Announce actions
	// per node: the changes of who holds the VIPs.
	VIPActions []int
	// Announcements lists every Announce (takeovers and re-announcements)
	// in order.
	Announcements []AnnounceRecord

	rng   *rand.Rand
	queue eventQueue
	seq   uint64
	// lastArrival keeps each sender->receiver link in order, as one
	// Ethernet segment does: jitter never reorders adverts.
	lastArrival map[[2]int]time.Time
}

// Epoch is the simulated time at which every segment starts.
var Epoch = time.Unix(1_700_000_000, 0)

// New makes a segment with one node per entry of configs; each entry lists
// the node's groups (member i of every node is the same virtual router).
func New(seed uint64, configs ...[]vrrp.Config) (*Segment, error) {
	s := &Segment{Now: Epoch, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), lastArrival: map[[2]int]time.Time{}}
	for i, cfgs := range configs {
		n := &Node{Name: fmt.Sprintf("n%d", i), Up: true, configs: cfgs}
		if err := n.build(); err != nil {
			return nil, err
		}
		s.Nodes = append(s.Nodes, n)
	}
	s.Sent = make([]int, len(configs))
	s.VIPActions = make([]int, len(configs))
	return s, nil
}

func (n *Node) build() error {
	routers := make([]*vrrp.Router, len(n.configs))
	for i, c := range n.configs {
		r, err := vrrp.NewRouter(c)
		if err != nil {
			return fmt.Errorf("%s member %d: %w", n.Name, i, err)
		}
		routers[i] = r
	}
	n.Group = vrrp.NewSyncGroup(routers...)
	n.nextTick = time.Time{}
	n.gen++
	return nil
}

// Rand is the segment's deterministic random source, for tests' choices.
func (s *Segment) Rand() *rand.Rand { return s.rng }

// Start starts node i (all members).
func (s *Segment) Start(i int) { s.step(i, -1, vrrp.Start{}) }

// Shutdown stops node i gracefully (priority-0 adverts while Active).
func (s *Segment) Shutdown(i int) { s.step(i, -1, vrrp.Shutdown{}) }

// Reconfigure changes member m of node i in place.
func (s *Segment) Reconfigure(i, m int, cfg vrrp.Config) {
	s.Nodes[i].configs[m] = cfg
	s.step(i, m, vrrp.Reconfigure{Config: cfg})
}

// Config returns the configuration of member m of node i.
func (s *Segment) Config(i, m int) vrrp.Config { return s.Nodes[i].configs[m] }

// Crash stops node i silently; its pending deliveries are lost.
func (s *Segment) Crash(i int) { s.Nodes[i].Up = false }

// Restart replaces a crashed or shut-down node with fresh routers and starts it.
func (s *Segment) Restart(i int) error {
	n := s.Nodes[i]
	if err := n.build(); err != nil {
		return err
	}
	n.Up = true
	s.Start(i)
	return nil
}

// Pause stops node i as SIGSTOP would: nothing runs until Resume.
func (s *Segment) Pause(i int) { s.Nodes[i].Paused = true }

// Resume runs node i again: it handles the packets that queued up, in
// order, and its overdue timers, in an order chosen by the seed (a real
// event loop finds both ready at once).
func (s *Segment) Resume(i int) {
	n := s.Nodes[i]
	if !n.Paused {
		return
	}
	n.Paused = false
	held := n.held
	n.held = nil
	tickFirst := s.rng.IntN(2) == 0
	if tickFirst {
		s.tickIfDue(i)
	}
	for _, ev := range held {
		if n.gen == ev.gen {
			s.step(i, ev.member, ev.packet)
		}
	}
	if !tickFirst {
		s.tickIfDue(i)
	}
}

func (s *Segment) tickIfDue(i int) {
	n := s.Nodes[i]
	if d := n.Group.Deadline(); !d.IsZero() && !d.After(s.Now) {
		n.nextTick = time.Time{}
		s.step(i, -1, vrrp.Tick{})
	}
}

// Partition splits the segment: node i goes to partition part[i].
func (s *Segment) Partition(part ...int) {
	for i, p := range part {
		s.Nodes[i].Partition = p
	}
}

// Heal joins all partitions again.
func (s *Segment) Heal() {
	for _, n := range s.Nodes {
		n.Partition = 0
	}
}

// Actives returns the up nodes whose group is Active, per partition.
func (s *Segment) Actives() map[int][]int {
	out := map[int][]int{}
	for i, n := range s.Nodes {
		if n.Up && n.Group.State() == vrrp.StateActive {
			out[n.Partition] = append(out[n.Partition], i)
		}
	}
	return out
}

// Run processes every event up to and including until; Now ends at until.
func (s *Segment) Run(until time.Time) {
	for s.queue.Len() > 0 && !s.queue[0].at.After(until) {
		ev := heap.Pop(&s.queue).(*event)
		s.Now = ev.at
		n := s.Nodes[ev.node]
		if !n.Up || n.gen != ev.gen {
			continue
		}
		if n.Paused {
			if !ev.tick && n.Partition == ev.partition {
				n.held = append(n.held, ev)
			}
			continue // a tick is due again at Resume
		}
		if ev.tick {
			if !ev.at.Equal(n.nextTick) {
				continue // superseded
			}
			n.nextTick = time.Time{}
			s.step(ev.node, -1, vrrp.Tick{})
			continue
		}
		if n.Partition != ev.partition {
			continue // cut while in flight
		}
		s.step(ev.node, ev.member, ev.packet)
	}
	if until.After(s.Now) {
		s.Now = until
	}
}

// RunFor runs d of simulated time.
func (s *Segment) RunFor(d time.Duration) { s.Run(s.Now.Add(d)) }

func (s *Segment) step(i, member int, ev vrrp.Event) {
	n := s.Nodes[i]
	if !n.Up {
		return
	}
	for _, ma := range n.Group.Step(s.Now, member, ev) {
		switch a := ma.Action.(type) {
		case vrrp.SendAdvert:
			s.Sent[i]++
			s.broadcast(i, ma.Member, a.Data)
		case vrrp.Transition:
			s.Transitions = append(s.Transitions, Record{At: s.Now, Node: i, Member: ma.Member, Transition: a})
		case vrrp.AddVIPs, vrrp.RemoveVIPs:
			s.VIPActions[i]++
		case vrrp.Announce:
			if a.Reason == vrrp.AnnounceTakeover {
				s.VIPActions[i]++
			}
			s.Announcements = append(s.Announcements, AnnounceRecord{At: s.Now, Node: i, Member: ma.Member, Reason: a.Reason})
		case vrrp.Rejected:
			s.Violations = append(s.Violations, fmt.Sprintf("%v %s: rejected: %v", s.Now.Sub(Epoch), n.Name, a.Err))
		}
	}
	s.checkSync(i)
	if d := n.Group.Deadline(); !d.IsZero() && !d.Equal(n.nextTick) {
		n.nextTick = d
		s.push(&event{at: d, node: i, tick: true, gen: n.gen})
	}
}

// checkSync records a violation when the started members of a node disagree.
func (s *Segment) checkSync(i int) {
	g := s.Nodes[i].Group
	var active, started int
	for m := 0; m < g.Len(); m++ {
		switch g.Router(m).State() {
		case vrrp.StateActive:
			active++
			started++
		case vrrp.StateBackup:
			started++
		}
	}
	if active != 0 && active != started {
		s.Violations = append(s.Violations, fmt.Sprintf("%v %s: %d of %d members Active", s.Now.Sub(Epoch), s.Nodes[i].Name, active, started))
	}
}

func (s *Segment) broadcast(from, member int, data []byte) {
	src := s.Nodes[from].configs[member].Source
	dst := vrrp.GroupIPv4
	if src.Is6() {
		dst = vrrp.GroupIPv6
	}
	for j, n := range s.Nodes {
		if j == from || !n.Up || n.Partition != s.Nodes[from].Partition {
			continue
		}
		if s.Loss > 0 && s.rng.Float64() < s.Loss {
			continue
		}
		delay := s.DelayMin
		if s.DelayMax > s.DelayMin {
			delay += time.Duration(s.rng.Int64N(int64(s.DelayMax - s.DelayMin + 1)))
		}
		at := s.Now.Add(delay)
		if prev := s.lastArrival[[2]int{from, j}]; at.Before(prev) {
			at = prev
		}
		s.lastArrival[[2]int{from, j}] = at
		s.push(&event{at: at, node: j, member: member, partition: n.Partition, gen: n.gen,
			packet: vrrp.Packet{Src: src, Dst: dst, TTL: vrrp.RequiredTTL, Data: data}})
	}
}

func (s *Segment) push(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.queue, e)
}

type event struct {
	at        time.Time
	seq       uint64 // FIFO among equal times: determinism
	node      int
	member    int
	partition int
	gen       int
	tick      bool
	packet    vrrp.Packet
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
