package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// seeds is how many random clusters each property runs on. Every run is
// deterministic in its seed; a failure names the seed to replay.
const seeds = 1000

// cluster is a random cluster of 2..5 nodes.
type cluster struct {
	seed      uint64
	prios     []uint8
	intervals []time.Duration // per member
	preempt   bool
	delayMax  time.Duration
	cfgs      [][]vrrp.Config
}

func (c cluster) String() string {
	return fmt.Sprintf("seed %d: priorities %v intervals %v preempt %v delay <= %v", c.seed, c.prios, c.intervals, c.preempt, c.delayMax)
}

func randomCluster(seed uint64) cluster {
	rng := rand.New(rand.NewPCG(seed, 42))
	c := cluster{seed: seed, preempt: rng.IntN(4) != 0}
	n := 2 + rng.IntN(4)
	choices := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, time.Second}
	c.intervals = []time.Duration{choices[rng.IntN(len(choices))]}
	if rng.IntN(2) == 0 { // a second group: IPv6, maybe another interval
		c.intervals = append(c.intervals, choices[rng.IntN(len(choices))])
	}
	c.delayMax = slices.Min(c.intervals) / time.Duration(1+rng.IntN(8))
	for i := 0; i < n; i++ {
		p := uint8(1 + rng.IntN(254))
		if i > 0 && rng.IntN(5) == 0 {
			p = c.prios[rng.IntN(i)] // equal priorities exercise the tie-break
		}
		c.prios = append(c.prios, p)
	}
	if rng.IntN(6) == 0 {
		c.prios[rng.IntN(n)] = 255 // one address owner
	}
	src := func(node, member int) netip.Addr {
		if member == 0 {
			return netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + node)})
		}
		return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: byte(10 + node)})
	}
	vips := []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("2001:db8::100/64")}
	for i := 0; i < n; i++ {
		var node []vrrp.Config
		for m, iv := range c.intervals {
			var peers []netip.Addr
			for j := 0; j < n; j++ {
				if j != i {
					peers = append(peers, src(j, m))
				}
			}
			node = append(node, vrrp.Config{VRID: uint8(10 + m), Priority: c.prios[i], Source: src(i, m), AdvertInterval: iv,
				Preempt: c.preempt, VIPs: vips[m : m+1], Peers: peers, Checksum: []vrrp.ChecksumForm{vrrp.ChecksumPseudoHeader, 0}[m]})
		}
		c.cfgs = append(c.cfgs, node)
	}
	return c
}

func (c cluster) segment(t *testing.T) *Segment {
	t.Helper()
	s, err := New(c.seed, c.cfgs...)
	if err != nil {
		t.Fatal(err)
	}
	s.DelayMax = c.delayMax
	return s
}

// maxInterval is the longest advert interval of the node's groups.
func (c cluster) maxInterval() time.Duration { return slices.Max(c.intervals) }

// downInterval is when the first member of a node with priority p gives
// up on a silent Active: the smallest Active_Down_Interval of its groups.
func (c cluster) downInterval(p uint8) time.Duration {
	d := time.Duration(1 << 62)
	for _, iv := range c.intervals {
		d = min(d, vrrp.ActiveDownInterval(p, iv))
	}
	return d
}

func (c cluster) skew(p uint8) time.Duration {
	d := time.Duration(1 << 62)
	for _, iv := range c.intervals {
		d = min(d, vrrp.SkewTime(p, iv))
	}
	return d
}

// settle is long enough for any election to finish without loss.
func (c cluster) settle() time.Duration { return 8 * c.downInterval(1) }

// best returns the highest priority among the nodes listed.
func (c cluster) best(nodes []int) uint8 {
	var b uint8
	for _, i := range nodes {
		b = max(b, c.prios[i])
	}
	return b
}

func startAll(s *Segment, c cluster) {
	// Nodes come up at random times within two intervals.
	order := s.Rand().Perm(len(c.prios))
	for _, i := range order {
		s.RunFor(time.Duration(s.Rand().Int64N(int64(2 * c.maxInterval() / time.Duration(len(order))))))
		s.Start(i)
	}
}

// checkOneActive fails unless every partition holding up nodes has exactly
// one Active and, with preemption, it has the partition's best priority.
func checkOneActive(t *testing.T, s *Segment, c cluster, when string) int {
	t.Helper()
	parts := map[int][]int{}
	for i, n := range s.Nodes {
		if n.Up && n.Group.State() != vrrp.StateInitialize {
			parts[n.Partition] = append(parts[n.Partition], i)
		}
	}
	actives := s.Actives()
	last := -1
	for p, nodes := range parts {
		a := actives[p]
		if len(a) != 1 {
			t.Fatalf("%v: %s: partition %d (nodes %v) has Actives %v", c, when, p, nodes, a)
		}
		if (c.preempt || c.best(nodes) == 255) && c.prios[a[0]] != c.best(nodes) {
			t.Fatalf("%v: %s: Active n%d has priority %d, best in partition %v is %d", c, when, a[0], c.prios[a[0]], nodes, c.best(nodes))
		}
		last = a[0]
	}
	if len(s.Violations) > 0 {
		t.Fatalf("%v: sync group violations: %v", c, s.Violations)
	}
	return last
}

// firstActiveAfter is the first transition to Active after t by a node
// other than skip.
// othersThan lists every node of the segment but skip.
func othersThan(s *Segment, skip int) []int {
	var nodes []int
	for i := range s.Nodes {
		if i != skip {
			nodes = append(nodes, i)
		}
	}
	return nodes
}

func firstActiveAfter(s *Segment, t time.Time, skip int) (Record, bool) {
	for _, r := range s.Transitions {
		if r.At.After(t) && r.Node != skip && r.To == vrrp.StateActive {
			return r, true
		}
	}
	return Record{}, false
}

func transitionsAfter(s *Segment, t time.Time) int {
	n := 0
	for _, r := range s.Transitions {
		if r.At.After(t) {
			n++
		}
	}
	return n
}

func eachSeed(t *testing.T, f func(t *testing.T, c cluster)) {
	for seed := uint64(1); seed <= seeds; seed++ {
		f(t, randomCluster(seed))
		if t.Failed() {
			return
		}
	}
}

// After loss and jitter stop, one Active remains (the best with preempt)
// and then nothing moves.
func TestConvergence(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		s.Loss = 0.3 * s.Rand().Float64()
		startAll(s, c)
		s.RunFor(50 * c.maxInterval())
		s.Loss = 0
		s.RunFor(c.settle())
		checkOneActive(t, s, c, "after convergence")
		quiet := s.Now
		s.RunFor(c.settle())
		if n := transitionsAfter(s, quiet); n != 0 {
			t.Fatalf("%v: %d transitions in a steady state without loss", c, n)
		}
		checkOneActive(t, s, c, "still")
	})
}

// A silent Active is replaced within Active_Down_Interval (plus the delay
// of its last advert), and not sooner than its last advert allows.
func TestSilentActiveTakeover(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		active := checkOneActive(t, s, c, "before the crash")
		backups := othersThan(s, active)
		s.RunFor(time.Duration(s.Rand().Int64N(int64(c.maxInterval()))))
		crash := s.Now
		s.Crash(active)
		s.RunFor(c.settle())
		r, ok := firstActiveAfter(s, crash, active)
		if !ok {
			t.Fatalf("%v: nobody took over from crashed n%d", c, active)
		}
		took := r.At.Sub(crash)
		if limit := c.delayMax + c.downInterval(c.best(backups)); took > limit {
			t.Fatalf("%v: takeover by n%d after %v, more than Active_Down_Interval + delay %v", c, r.Node, took, limit)
		}
		if floor := c.downInterval(c.prios[r.Node]) - c.maxInterval(); took < floor {
			t.Fatalf("%v: takeover by n%d after %v, before the Active could be missed (%v)", c, r.Node, took, floor)
		}
		checkOneActive(t, s, c, "after the takeover")
	})
}

// A priority-0 advert hands over within Skew_Time (plus delay).
func TestPriorityZeroHandover(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		active := checkOneActive(t, s, c, "before the shutdown")
		backups := othersThan(s, active)
		s.RunFor(time.Duration(s.Rand().Int64N(int64(c.maxInterval()))))
		stop := s.Now
		s.Shutdown(active)
		s.Crash(active) // and stays down
		s.RunFor(c.settle())
		r, ok := firstActiveAfter(s, stop, active)
		if !ok {
			t.Fatalf("%v: nobody took over from n%d", c, active)
		}
		took := r.At.Sub(stop)
		if limit := c.delayMax + c.skew(c.best(backups)); took > limit {
			t.Fatalf("%v: handover to n%d after %v, more than Skew_Time + delay %v", c, r.Node, took, limit)
		}
		checkOneActive(t, s, c, "after the handover")
	})
}

// Partitions each elect one Active; healing leaves one, within one advert
// interval plus delays.
func TestPartitionAndHeal(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		checkOneActive(t, s, c, "before the partition")
		n := len(s.Nodes)
		part := make([]int, n)
		for {
			for i := range part {
				part[i] = s.Rand().IntN(2)
			}
			if slices.Contains(part, 0) && slices.Contains(part, 1) {
				break
			}
		}
		s.Partition(part...)
		s.Loss = 0.2 * s.Rand().Float64()
		s.RunFor(20 * c.maxInterval())
		s.Loss = 0
		s.RunFor(c.settle())
		checkOneActive(t, s, c, "partitioned")
		heal := s.Now
		s.Heal()
		s.RunFor(c.settle())
		checkOneActive(t, s, c, "healed")
		// The last transition of the heal: the losing Active yielding.
		var last time.Time
		for _, r := range s.Transitions {
			if r.At.After(heal) {
				last = r.At
			}
		}
		// The first advert to cross either makes the lower Active yield or
		// is answered at once by the higher one.
		if limit := heal.Add(slices.Min(c.intervals) + 2*c.delayMax); last.After(limit) {
			t.Fatalf("%v: two Actives for %v after the heal, want within one interval + 2 delays", c, last.Sub(heal))
		}
	})
}

// A better node that comes back preempts (with preemption) within its
// Active_Down_Interval; without, it stays Backup unless it owns the VIPs.
func TestReturnOfTheBest(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		active := checkOneActive(t, s, c, "first election")
		s.Crash(active)
		s.RunFor(c.settle())
		second := checkOneActive(t, s, c, "after the crash")
		back := s.Now
		if err := s.Restart(active); err != nil {
			t.Fatal(err)
		}
		s.RunFor(c.settle())
		now := checkOneActive(t, s, c, "after the return")
		beats := c.prios[active] > c.prios[second]
		switch {
		case c.prios[active] == 255:
			if now != active {
				t.Fatalf("%v: owner n%d came back but n%d is Active", c, active, now)
			}
		case c.preempt && beats:
			r, _ := firstActiveAfter(s, back, -1)
			if r.Node != active || r.At.Sub(back) > c.downInterval(c.prios[active]) {
				t.Fatalf("%v: returning n%d: first Active after return %+v", c, active, r)
			}
		case !c.preempt:
			if now != second {
				t.Fatalf("%v: without preemption n%d took over from n%d", c, now, second)
			}
		}
	})
}

// An advert from a rogue (not a peer) is dropped and never wins.
func TestRogueIgnored(t *testing.T) {
	c := randomCluster(7)
	s := c.segment(t)
	startAll(s, c)
	s.RunFor(c.settle())
	active := checkOneActive(t, s, c, "before the rogue")
	rogue := vrrp.Advert{Version: 3, Type: 1, VRID: 10, Priority: 255, MaxAdvertInterval: 1, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	data, err := rogue.Marshal(netip.MustParseAddr("192.0.2.66"), vrrp.GroupIPv4, vrrp.ChecksumRFC9568)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Nodes {
		s.step(i, 0, vrrp.Packet{Src: netip.MustParseAddr("192.0.2.66"), Dst: vrrp.GroupIPv4, TTL: 255, Data: data})
		if got := s.Nodes[i].Group.Router(0).Stats().Drops[vrrp.DropUnknownSource]; got != 1 {
			t.Fatalf("n%d counted %d unknown-source drops", i, got)
		}
	}
	s.RunFor(c.settle())
	if now := checkOneActive(t, s, c, "after the rogue"); now != active {
		t.Fatalf("Active moved from n%d to n%d", active, now)
	}
}

// Reloads that change nothing relevant (peer and VIP order, accept mode,
// preempt delay) move nothing: no transition, no VIP or announce action.
func TestReconfigureWithoutFlap(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		s.Loss = 0
		startAll(s, c)
		s.RunFor(c.settle())
		active := checkOneActive(t, s, c, "before the reloads")
		before, vipBefore := len(s.Transitions), slices.Clone(s.VIPActions)
		for round := 0; round < 5; round++ {
			for i := range s.Nodes {
				for m := range c.intervals {
					cfg := s.Config(i, m)
					cfg.Peers = slices.Clone(cfg.Peers)
					s.Rand().Shuffle(len(cfg.Peers), func(a, b int) { cfg.Peers[a], cfg.Peers[b] = cfg.Peers[b], cfg.Peers[a] })
					cfg.AcceptMode = !cfg.AcceptMode
					cfg.PreemptDelay = time.Duration(s.Rand().IntN(3)) * time.Second
					s.Reconfigure(i, m, cfg)
				}
				s.RunFor(time.Duration(s.Rand().Int64N(int64(c.maxInterval()))))
			}
		}
		s.RunFor(c.settle())
		if len(s.Transitions) != before || !slices.Equal(s.VIPActions, vipBefore) {
			t.Fatalf("%v: reloads caused transitions %v and VIP actions %v -> %v", c, s.Transitions[before:], vipBefore, s.VIPActions)
		}
		if now := checkOneActive(t, s, c, "after the reloads"); now != active {
			t.Fatalf("%v: Active moved from n%d to n%d", c, active, now)
		}
	})
}

// Lowering the Active's priority below a preempting Backup hands over
// within that Backup's Active_Down_Interval after the next advert; a VIP
// added everywhere is added and announced only by the Active.
func TestReconfigurePriorityAndVIPs(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		if !c.preempt || len(c.prios) < 2 {
			return
		}
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		active := checkOneActive(t, s, c, "before the reload")
		vipBefore := slices.Clone(s.VIPActions)
		for i := range s.Nodes {
			cfg := s.Config(i, 0)
			cfg.VIPs = append(slices.Clone(cfg.VIPs), netip.MustParsePrefix("192.0.2.200/24"))
			s.Reconfigure(i, 0, cfg)
		}
		for i := range s.Nodes {
			want := vipBefore[i]
			if i == active {
				want += 2 // AddVIPs + Announce
			}
			if s.VIPActions[i] != want {
				t.Fatalf("%v: n%d (Active n%d) did %d VIP actions for one added VIP", c, i, active, s.VIPActions[i]-vipBefore[i])
			}
		}
		var second int = -1
		for i, p := range c.prios {
			if i != active && (second < 0 || p > c.prios[second]) {
				second = i
			}
		}
		if c.prios[second] < 2 || c.prios[second] == 255 || c.prios[active] == 255 {
			return
		}
		lower := c.prios[second] / 2
		if lower == 0 {
			lower = 1
		}
		reload := s.Now
		for m := range c.intervals {
			cfg := s.Config(active, m)
			cfg.Priority = lower
			s.Reconfigure(active, m, cfg)
		}
		c.prios[active] = lower
		s.RunFor(c.settle())
		r, ok := firstActiveAfter(s, reload, active)
		if !ok {
			t.Fatalf("%v: nobody took over from n%d lowered to %d", c, active, lower)
		}
		if limit := c.maxInterval() + c.delayMax + c.downInterval(c.prios[r.Node]); r.At.Sub(reload) > limit {
			t.Fatalf("%v: takeover after %v, more than one interval + Active_Down_Interval %v", c, r.At.Sub(reload), limit)
		}
		checkOneActive(t, s, c, "after lowering the Active")
	})
}
