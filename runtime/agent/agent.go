// Package agent runs one node's plan: it is the executor around the pure
// node (runtime/node). One goroutine runs the event loop (loop.go): it
// feeds the node events with the time — plan files read, link reports,
// packets from the sockets, timer ticks, stop — and carries out the
// effects it returns on real Linux networking (effects.go). Everything
// else (the plan watcher, the link watcher, signals, HTTP requests) only
// posts work to the loop. This package holds no decision of its own and
// no state the node keeps.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/distributor"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/plan"
)

// Config configures an Agent.
type Config struct {
	// PlanPath is the plan file; its directory is watched for changes.
	PlanPath string
	Logger   *slog.Logger
	// Network defaults to LinuxNetwork.
	Network Network
	// Registry receives the agent's metrics; nil makes a fresh one with the
	// Go and process collectors.
	Registry *prometheus.Registry
	// Debounce is how long the directory must be quiet before a change is
	// read (default 150ms): deploy tools write several files in a burst.
	Debounce time.Duration
	// NoWatch turns the fsnotify watcher off (tests of the loop alone call
	// Reload instead).
	NoWatch bool
}

// Agent executes one node's plan. Create it with New, run it with Run.
type Agent struct {
	cfg Config
	log *slog.Logger
	net Network
	reg *prometheus.Registry
	met *metrics

	initial []byte // the plan New read, started by Run

	// Owned by the loop.
	node         *node.Node
	nodeLog      *deferredLog // the node's log lines, written after its effects
	poll         *poller
	pending      []node.Event // produced by effects, stepped before the next event
	vrrp         map[node.Socket]*vrrpSocket
	mgmt         map[node.MgmtSocket]*mgmtSocket
	announcers   map[string]Announcer
	groups       map[string]*groupState
	lastRoute    lastRoute              // the last advert's group and socket (effects.go)
	unicast      map[peerKey]*peerSends // copies sent to unicast peers (unicast.go)
	table        *mgmt.TableWriter
	notifier     notifier  // notify commands, run off the loop
	mgmtErrors   uint64    // management datagrams the kernel refused
	startErr     error     // why the first plan could not start
	rulesCleaned bool      // a crashed run's nftables tables are gone
	fwd          Forwarder // traffic distribution; nil when the Network has none
	distMetrics  *distributor.Collector
	stopped      bool
	paused       int        // sockets left alone for a while (resumeAt, retryAt)
	buf          []byte     // receive buffer
	spoof        watchState // impersonation watchers (watchers.go)
	claims       claimState // VIP claim watchers (watchers.go)
	// ifindex, vmacs and forwarding are what the executor bound to
	// interfaces, to bind it again when one is re-created (relink.go).
	ifindex    map[string]int
	ifmac      map[string]string
	vmacs      map[string]vmacSpec
	forwarding forward.State // the last state asked for (l2: the index is filled in at apply)

	running atomic.Bool
}

// New reads and validates the plan at cfg.PlanPath. Nothing is touched on
// the host until Run.
func New(cfg Config) (*Agent, error) {
	if cfg.PlanPath == "" {
		return nil, errors.New("agent: no plan file given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Network == nil {
		cfg.Network = LinuxNetwork{}
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 150 * time.Millisecond
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		registerProcessCollectors(reg)
	}
	_, data, err := plan.ReadFile(cfg.PlanPath)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger, net: cfg.Network, reg: reg, met: newMetrics(reg), initial: data,
		vrrp: map[node.Socket]*vrrpSocket{}, mgmt: map[node.MgmtSocket]*mgmtSocket{},
		announcers: map[string]Announcer{}, groups: map[string]*groupState{}, buf: make([]byte, 65536),
		unicast: map[peerKey]*peerSends{},
	}
	reg.MustRegister(mgmt.NewCollector(a.mgmtSnapshot))
	reg.MustRegister(unicastCollector{groups: a.unicastGroups})
	a.notifier.total = newNotifyCounter(reg)
	a.spoof.init(reg)
	if fn, ok := cfg.Network.(ForwardingNetwork); ok {
		a.fwd = fn.NewForwarder()
	}
	a.distMetrics = distributor.NewCollector(a.distStatus)
	reg.MustRegister(a.distMetrics)
	return a, nil
}

// newNode makes the node with a fresh management boot id: random, so that
// receivers tell this run from the last one.
func (a *Agent) newNode() *node.Node {
	var seed [16]byte
	_, _ = rand.Read(seed[:])
	boot := binary.BigEndian.Uint64(seed[:8]) | 1
	a.nodeLog = newDeferredLog(a.log.Handler())
	return node.New(node.Config{
		Logger:     slog.New(a.nodeLog),
		MgmtBootID: boot,
		MgmtRand:   mrand.New(mrand.NewPCG(binary.BigEndian.Uint64(seed[8:]), boot)),
	})
}

// Reload asks the loop to read the plan again now (SIGHUP). It never blocks.
func (a *Agent) Reload() { a.post(func() { a.readPlan(true) }) }

// post runs f in the loop; false when the loop is not running.
func (a *Agent) post(f func()) bool {
	p := a.poll
	return p != nil && p.post(f)
}

// Run starts the plan and runs until ctx is cancelled, then hands over
// gracefully (priority-0 adverts, VIPs removed) and returns nil. An error
// means the plan could not be started at all.
func (a *Agent) Run(ctx context.Context) error {
	p, err := newPoller()
	if err != nil {
		return fmt.Errorf("agent: event loop: %w", err)
	}
	a.node = a.newNode()
	a.table = mgmt.NewTableWriter(a.log)
	a.poll = p
	a.startNotifier()
	defer func() {
		a.running.Store(false)
		p.drain()
		a.closeAll()
		a.table.Close()
		a.notifier.runner.Close()
		p.close()
	}()

	// Link states before the plan: a node whose link is already down
	// starts in Fault instead of joining the election first.
	watchCtx, stopLinkWatch := context.WithCancel(context.Background())
	defer stopLinkWatch()
	if err := a.net.WatchLinks(watchCtx, func(full bool, links []LinkState) {
		ev := node.LinkReport{Full: full, Links: append([]LinkState(nil), links...)}
		a.post(func() {
			a.relink(ev.Links)
			a.step(ev)
		})
	}, func(err error) { a.log.Warn("watching link state", "err", err) }); err != nil {
		a.log.Error("cannot read link state; interfaces count as up until it can", "err", err)
	}
	initial := a.initial
	a.post(func() { a.step(node.PlanFile{Data: initial, Forced: true}) })

	if !a.cfg.NoWatch {
		stopWatch, err := a.watch()
		if err != nil {
			a.log.Error("cannot watch the plan directory; reload only with SIGHUP", "err", err)
		} else {
			defer stopWatch()
			// A plan written between New and the watch would go unseen.
			a.post(func() { a.readPlan(false) })
		}
	}
	loopDone := make(chan struct{})
	defer close(loopDone)
	go func() {
		select {
		case <-ctx.Done():
			a.post(func() { a.step(node.Stop{}) })
		case <-loopDone:
		}
	}()
	a.running.Store(true)
	if err := p.run(a.onTimer, a.armTimer, func() bool { return a.stopped }); err != nil {
		return fmt.Errorf("agent: event loop: %w", err)
	}
	return a.startErr
}

// step feeds the node one event, carries out its effects, and then the
// events those produced (a Prepare's answer, a key file read, ...).
func (a *Agent) step(ev node.Event) {
	a.pending = append(a.pending[:0], ev)
	for i := 0; i < len(a.pending) && !a.stopped; i++ {
		ev := a.pending[i]
		a.carryOut(a.node.Step(time.Now(), ev)) // may append to a.pending
		// A Stop ends the loop only after the node's handover.
		if a.node.Stopped() {
			a.stopped = true
		}
	}
	clear(a.pending)
	a.pending = a.pending[:0]
	a.nodeLog.flush()
}

// onTimer runs what is due: the node's tick, and the management socket's
// pause between drains.
func (a *Agent) onTimer() {
	now := time.Now()
	if d := a.node.Deadline(); !d.IsZero() && !now.Before(d) {
		a.step(node.Tick{})
	}
	if a.paused > 0 {
		a.resumeMgmt(now)
		a.retryVRRP(now)
	}
}

// armTimer sets the timer for the earliest of the node's deadline and the
// management socket's next drain.
func (a *Agent) armTimer() {
	d := a.node.Deadline()
	if a.paused > 0 {
		earlier := func(t time.Time) {
			if !t.IsZero() && (d.IsZero() || t.Before(d)) {
				d = t
			}
		}
		for _, s := range a.mgmt {
			earlier(s.resumeAt)
		}
		for _, s := range a.vrrp {
			earlier(s.retryAt)
		}
	}
	a.poll.arm(d)
}

// readPlan reads the plan file and gives it to the node. An unforced read
// (a file event) of content already refused is ignored there.
func (a *Agent) readPlan(forced bool) {
	data, err := readLimited(a.cfg.PlanPath, plan.MaxSize+1)
	if err == nil && len(data) > plan.MaxSize {
		err = fmt.Errorf("%s: plan is more than %d bytes", a.cfg.PlanPath, plan.MaxSize)
	}
	a.step(node.PlanFile{Data: data, Err: err, Forced: forced})
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// closeAll releases what is still open: normally nothing (the node's Stop
// closed its sockets), after a failed start the announcers at most.
func (a *Agent) closeAll() {
	a.closeWatchers()
	a.closeClaimWatchers()
	for key, s := range a.vrrp {
		a.closeVRRP(key, s)
	}
	for key, s := range a.mgmt {
		a.closeMgmt(key, s)
	}
	for name, an := range a.announcers {
		an.Close()
		delete(a.announcers, name)
	}
}
