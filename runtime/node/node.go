// Package node is the agent's pure core, in the shape of etcd's raft
// RawNode: one node's VRRP groups (a sync group), link tracking (Fault),
// the plan with its reloads, the announcement bursts and the management
// protocol engine, as one state machine. Events come in with the time they
// happened (a plan file read, a link report, a packet, a tick, a stop);
// effects come out (open this socket, send this advert, add this VIP,
// announce, send this management datagram, and reports for metrics). No
// goroutines, sockets, files or clocks: the executor (runtime/agent) does
// all I/O, and every behaviour here is a scripted test on a fake clock.
//
// Effects that can fail and decide a plan (sockets, link-local sources,
// key files) come inside a Prepare; the executor answers with Prepared,
// and only when every step worked is the plan committed. Otherwise the
// running plan stays in force and what was opened is closed again.
package node

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Config configures a Node.
type Config struct {
	// Logger receives the node's decisions (transitions, reloads, Fault,
	// drops at a limited rate). Nil discards them.
	Logger *slog.Logger
	// MgmtBootID is the management protocol's boot id: random and
	// non-zero, new for every start of the agent.
	MgmtBootID uint64
	// MgmtRand spreads the first management answer to a new director over
	// a quarter interval; nil answers at once.
	MgmtRand *rand.Rand
}

// Node is one node's running plan. It is not safe for concurrent use: one
// loop owns it.
type Node struct {
	log *slog.Logger
	cfg Config

	plan     *plan.Plan // the committed plan; nil before the first
	planHash [32]byte
	rejected *[32]byte // content refused last, not retried unless forced
	pending  *candidate
	txn      uint64
	last     ReloadStatus

	members []*member // the sync group's order
	sg      *vrrp.SyncGroup
	links   linkTracker
	// faultMove is set while Fault is entered or left: the engine's
	// Shutdown and Start transitions are logged as to and from Fault,
	// with this reason.
	faultMove *faultMove
	mgmt      *mgmtPart
	dist      distPart
	// mgmtStarts counts management engines started: each is a new boot.
	mgmtStarts uint64
	// stopping is set between Stop and the end of the handover (the VIPs
	// wait for the new Active, failover.go); stopped after it.
	stopping *stopping
	stopped  bool
	deadline time.Time // Deadline, as of the last Step
	auth     authPart  // keys, alarms (auth.go)
	claims   claimPart // VIP claims by other hosts (claims.go)

	out []Effect // returned by Step, reused
	// tickActions holds the engine's actions of a Tick while they are
	// carried out, reused.
	tickActions []vrrp.MemberAction
}

// New returns a node without a plan. Link reports may come before the
// first plan; the first PlanFile starts it.
func New(cfg Config) *Node {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{log: log, cfg: cfg, links: newLinkTracker(), auth: newAuthPart()}
}

// Step feeds one event that happened at now and returns the effects to
// carry out, in order. The slice is reused: it is valid until the next
// Step.
func (n *Node) Step(now time.Time, ev Event) []Effect {
	n.out = n.out[:0]
	if n.stopped {
		return n.out
	}
	if n.stopping != nil {
		switch ev.(type) {
		case VRRPPacket, Tick, Stop: // the handover; nothing else matters now
		default:
			return n.out
		}
	}
	switch ev := ev.(type) {
	case PlanFile:
		n.planFile(now, ev)
	case Prepared:
		n.prepared(now, ev)
	case LinkReport:
		n.linkReport(now, ev)
	case VRRPPacket:
		n.vrrpPacket(now, ev)
	case MgmtPacket:
		n.mgmtPacket(now, ev)
	case FileRead:
		n.fileRead(now, ev)
	case Load:
		n.mgmtLoad(now, ev)
	case ReportChecked:
		n.mgmtReport(now, ev)
	case Failed:
		n.failed(ev)
	case WatchFrame:
		n.watchFrame(now, ev)
	case ClaimFrame:
		n.claimFrame(now, ev)
	case Neighbors:
		n.distNeighbors(now, ev)
	case ForwardingApplied:
		n.distApplied(ev)
	case Tick:
		n.tick(now)
	case Stop:
		n.stop(now)
	default:
		n.log.Error("node: unknown event", "event", ev)
	}
	n.deadline = n.nextDeadline()
	return n.out
}

func (n *Node) emit(e ...Effect) { n.out = append(n.out, e...) }

// Deadline is when the next Tick is due; zero when no timer runs. It is
// worked out once at the end of every Step (the executor asks for it
// several times per event), so the node changes state only in Step.
func (n *Node) Deadline() time.Time { return n.deadline }

func (n *Node) nextDeadline() time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if n.stopped {
		return d
	}
	if n.stopping != nil {
		return n.stopping.until
	}
	if n.sg != nil {
		earlier(n.sg.Deadline())
	}
	for _, m := range n.members {
		for _, b := range m.bursts {
			earlier(b.next)
		}
	}
	if n.mgmt != nil {
		earlier(n.mgmt.deadline())
	}
	earlier(n.authDeadline())
	earlier(n.claimsDeadline())
	earlier(n.dist.deadline())
	return d
}

// Running reports whether a plan has been committed (and Stop not yet come).
func (n *Node) Running() bool { return n.plan != nil && !n.stopped && n.stopping == nil }

// Stopped reports whether the stop is complete: the handover is over and
// every socket closed; the executor may end.
func (n *Node) Stopped() bool { return n.stopped }

// Plan is the committed plan (nil before the first). The caller must not
// change it.
func (n *Node) Plan() *plan.Plan { return n.plan }

func (n *Node) tick(now time.Time) {
	if n.stopping != nil {
		if !now.Before(n.stopping.until) {
			for len(n.stopping.holding) > 0 {
				n.release(n.stopping.holding[0], "no new Active heard in time")
			}
			n.finishStop(now)
		}
		return
	}
	if n.sg != nil && !n.links.Fault() {
		// The engine's actions go into a slice kept for ticks (carried out
		// here, never kept): an Active's tick allocates nothing.
		n.tickActions = n.sg.AppendStep(n.tickActions[:0], now, -1, vrrp.Tick{})
		n.execute(now, n.tickActions)
		clear(n.tickActions)
	}
	n.runBursts(now)
	if n.mgmt != nil {
		n.mgmt.tick(n, now)
	}
	if n.plan != nil {
		n.authTick(now)
	}
	if n.claims.byVIP != nil {
		n.claimsTick(now)
	}
	if h := n.dist.deadline(); !h.IsZero() && !now.Before(h) {
		n.distribute(now, false) // the takeover hold is over
	}
}

// failed takes the executor's report of a host change that did not work.
func (n *Node) failed(ev Failed) {
	if add, ok := ev.Effect.(AddVIP); ok {
		for _, m := range n.members {
			if m.group.Name == add.Group {
				delete(m.held, add.VIP)
			}
		}
	}
}

// stop hands over: priority-0 adverts at once; the VIPs of Active groups
// stay until the new Active is heard or two advert intervals pass
// (failover.go), then every VIP of the plan is removed again in case an
// earlier removal failed, the macvlans of virtual MACs go, the management
// protocol sends its "leaving" answers, and every socket closes. A second
// Stop ends the wait.
func (n *Node) stop(now time.Time) {
	if n.stopping != nil {
		for len(n.stopping.holding) > 0 {
			n.release(n.stopping.holding[0], "stopped again")
		}
		n.finishStop(now)
		return
	}
	n.log.Info("shutting down")
	n.stopping = &stopping{until: now.Add(stopWait(n.members))}
	if n.sg != nil {
		n.execute(now, n.sg.Step(now, -1, vrrp.Shutdown{}))
	}
	for _, m := range n.members {
		m.bursts = nil
	}
	if len(n.stopping.holding) == 0 {
		n.finishStop(now)
		return
	}
	n.log.Info("holding the VIPs until the new Active is heard", "until", n.stopping.until)
}

// finishStop ends the stop.
func (n *Node) finishStop(now time.Time) {
	for _, m := range n.members {
		for _, v := range m.group.VIPs {
			n.emit(RemoveVIP{Group: m.group.Name, Interface: m.vipInterface(), VIP: v})
		}
		clear(m.held)
		if m.group.VMACInterface != "" {
			n.emit(RemoveVMAC{Group: m.group.Name, Name: m.group.VMACInterface})
		}
	}
	if n.mgmt != nil {
		n.mgmt.close(n, now)
		n.mgmt = nil
	}
	n.distStop()
	if n.plan != nil {
		n.emit(Rules{}) // mwgc's tables go with it
	}
	for _, s := range socketsOf(n.members) {
		n.emit(CloseVRRP{Socket: s})
	}
	n.stopping = nil
	n.stopped = true
	n.log.Info("stopped")
}
