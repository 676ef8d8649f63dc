// Package agent runs one node's plan: the VRRP groups of the node as one
// sync group on raw sockets, the VIPs and their announcements, the
// management protocol, hot reload of the plan, and the status listener.
//
// One goroutine (the loop) owns the engine and everything it drives; socket
// readers, the file watcher, signals and HTTP requests only send it
// messages. Reloads are applied as a difference: a group whose settings did
// not change is not touched at all.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Config configures an Agent.
type Config struct {
	// PlanPath is the plan file; its directory is watched for changes.
	PlanPath string
	Logger   *slog.Logger
	// Network defaults to LinuxNetwork.
	Network Network
	// StartManagement starts the management protocol when the plan has a
	// management section; nil means the section is logged and ignored.
	StartManagement StartManagement
	// Registry receives the agent's metrics; nil makes a fresh one with the
	// Go and process collectors.
	Registry *prometheus.Registry
	// Debounce is how long the directory must be quiet before a change is
	// read (default 150ms): deploy tools write several files in a burst.
	Debounce time.Duration
	// Watch enables the fsnotify watcher (default on; tests of the loop
	// alone turn it off and call Reload).
	NoWatch bool
}

// Agent executes one node's plan. Create it with New, run it with Run.
type Agent struct {
	cfg Config
	log *slog.Logger
	net Network
	reg *prometheus.Registry
	met *metrics

	// Owned by the loop goroutine.
	plan         *plan.Plan
	planHash     [32]byte
	rejectedHash [32]byte
	hasRejected  bool
	members      []*member
	sg           *vrrp.SyncGroup
	conns        map[connKey]*conn
	announcers   map[string]*lockedAnnouncer
	mgmt         Management
	syncActive   bool
	links        *linkTracker
	linkInbox    *linkInbox
	timer        *deadlineTimer
	lastReload   reloadStatus

	mgmtReg *trackingRegisterer
	auth    authState // keys, alarms, watchers (auth.go)

	pendingPlan *plan.Plan // read by New, started by Run
	pendingHash [32]byte

	inbound  chan inboundPacket
	reloadCh chan bool
	statusCh chan chan *Status
	running  atomic.Bool
	wg       sync.WaitGroup // reader and burst goroutines
	stop     chan struct{}  // closed when the loop ends
}

// member is one VRRP group of the plan: index i of the sync group.
type member struct {
	idx    int
	group  plan.Group
	cfg    vrrp.Config
	router *vrrp.Router
	conn   *conn

	mu   sync.Mutex // guards held: bursts read it
	held map[netip.Prefix]bool

	burstCtx    context.Context
	burstCancel context.CancelFunc
	sendFailing bool
	lastDropLog map[string]time.Time

	// Per-advert counters, looked up once: at 10 ms adverts the label
	// lookup would be a measurable share of the agent's CPU.
	sentCounter, recvCounter prometheus.Counter
}

func (m *member) isHeld(p netip.Prefix) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[p]
}

func (m *member) heldList() []netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]netip.Prefix, 0, len(m.held))
	for p := range m.held {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// stopBursts cancels running announcement bursts and arms a fresh context.
func (m *member) stopBursts() {
	if m.burstCancel != nil {
		m.burstCancel()
	}
	m.burstCtx, m.burstCancel = context.WithCancel(context.Background())
}

// connKey identifies one raw socket: groups of the same interface, family
// and source share it and are told apart by VRID.
type connKey struct {
	ifname string
	ipv6   bool
	source netip.Addr
}

func (k connKey) family() string {
	if k.ipv6 {
		return plan.FamilyIPv6
	}
	return plan.FamilyIPv4
}

type conn struct {
	key    connKey
	pc     PacketConn
	byVRID [256]*member
	// accept mirrors byVRID for the reader goroutine, which drops packets
	// of VRIDs this node does not run without waking the loop (another
	// cluster's 10 ms adverts would otherwise cost as much as our own).
	accept  atomic.Pointer[[256]bool]
	unknown prometheus.Counter
	closed  bool        // loop-owned
	shut    atomic.Bool // set before Close, so the reader stops quietly
}

type inboundPacket struct {
	c        *conn
	src, dst netip.Addr
	ttl      int
	data     []byte
}

type lockedAnnouncer struct {
	mu sync.Mutex
	a  Announcer
}

func (l *lockedAnnouncer) Announce(v netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.a.Announce(v)
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
	p, data, err := plan.ReadFile(cfg.PlanPath)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:        cfg,
		log:        cfg.Logger,
		net:        cfg.Network,
		reg:        reg,
		met:        newMetrics(reg),
		conns:      map[connKey]*conn{},
		announcers: map[string]*lockedAnnouncer{},
		links:      newLinkTracker(),
		linkInbox:  newLinkInbox(),
		inbound:    make(chan inboundPacket, 256),
		reloadCh:   make(chan bool, 1),
		statusCh:   make(chan chan *Status),
		stop:       make(chan struct{}),
	}
	a.auth.init(reg)
	a.pendingPlan, a.pendingHash = p, sha256.Sum256(data)
	return a, nil
}

// Reload asks the loop to read the plan again now (SIGHUP). It never blocks.
func (a *Agent) Reload() { a.requestReload(true) }

func (a *Agent) requestReload(force bool) {
	select {
	case a.reloadCh <- force:
	default:
		if force {
			// A pending unforced request is upgraded: drain and resend.
			select {
			case <-a.reloadCh:
			default:
			}
			select {
			case a.reloadCh <- true:
			default:
			}
		}
	}
}

// Run starts the plan and runs until ctx is cancelled, then hands over
// gracefully (priority-0 adverts, VIPs removed) and returns nil. An error
// means the plan could not be started at all.
func (a *Agent) Run(ctx context.Context) error {
	p, h := a.pendingPlan, a.pendingHash
	a.pendingPlan = nil
	now := time.Now()

	// VIPs an earlier run left behind would answer for the cluster while we
	// are Backup: remove them (only the plan's own VIPs).
	if p.VRRP != nil {
		for _, g := range p.VRRP.Groups {
			for _, v := range g.VIPs {
				if err := a.net.RemoveVIP(g.Interface, v); err != nil {
					return fmt.Errorf("removing leftover VIP %v from %s: %w", v, g.Interface, err)
				}
			}
		}
	}
	a.timer = newDeadlineTimer()
	defer a.timer.Close()

	// Link states before the groups start: a node whose link is already
	// down starts in Fault instead of joining the election first.
	watchCtx, stopLinkWatch := context.WithCancel(context.Background())
	defer stopLinkWatch()
	if err := a.net.WatchLinks(watchCtx, a.linkInbox.put, func(err error) {
		a.log.Warn("watching link state", "err", err)
	}); err != nil {
		a.log.Error("cannot read link state; interfaces count as up until it can", "err", err)
	}
	for _, b := range a.linkInbox.take() {
		a.links.Observe(b.full, b.links)
	}
	if _, err := a.apply(now, p, true); err != nil {
		a.closeAll()
		return err
	}
	a.planHash = h
	a.log.Info("plan started", "cluster", p.Cluster, "node", p.Node, "digest", p.Digest,
		"groups", len(a.members), "management", p.Management != nil)

	if !a.cfg.NoWatch {
		stopWatch, err := a.watch()
		if err != nil {
			a.log.Error("cannot watch the plan directory; reload only with SIGHUP", "err", err)
		} else {
			defer stopWatch()
			// A plan written between New and the watch would go unseen.
			a.requestReload(false)
		}
	}
	a.running.Store(true)
	defer a.running.Store(false)
	a.resetTimer()
	keyTick := time.NewTicker(keyRereadEvery)
	defer keyTick.Stop()

	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case pkt := <-a.inbound:
			// A due advert goes first: under a flood of packets the timer's
			// goroutine may wait for the scheduler, so look at the clock.
			if a.sg != nil {
				if d := a.sg.Deadline(); !d.IsZero() && !time.Now().Before(d) {
					a.execute(a.sg.Step(time.Now(), -1, vrrp.Tick{}))
				}
			}
			a.dispatch(pkt)
		case <-a.timer.C:
			if a.sg != nil {
				a.execute(a.sg.Step(time.Now(), -1, vrrp.Tick{}))
			}
		case <-a.linkInbox.notify:
			a.onLinks(time.Now(), a.linkInbox.take())
		case force := <-a.reloadCh:
			a.reload(force)
		case reply := <-a.statusCh:
			reply <- a.status()
		case now := <-keyTick.C:
			a.rereadKeys(now)
			a.expireAlarms(now)
		}
		a.resetTimer()
	}
}

func (a *Agent) resetTimer() {
	if a.sg == nil {
		a.timer.Stop()
		return
	}
	d := a.sg.Deadline()
	if d.IsZero() {
		a.timer.Stop()
		return
	}
	a.timer.Reset(max(time.Until(d), 0))
}

// dispatch hands a received packet to the group that runs its VRID.
func (a *Agent) dispatch(pkt inboundPacket) {
	if pkt.c.closed || a.links.Fault() {
		return // in Fault the node is out of the election
	}
	if pkt.c.byVRID[pkt.data[1]] == nil { // removed by a reload meanwhile
		pkt.c.unknown.Inc()
		return
	}
	m := pkt.c.byVRID[pkt.data[1]]
	m.recvCounter.Inc()
	a.execute(a.sg.Step(time.Now(), m.idx, vrrp.Packet{Src: pkt.src, Dst: pkt.dst, TTL: pkt.ttl, Data: pkt.data}))
}

// execute carries out the engine's actions and follows the sync group's
// state for the management protocol.
func (a *Agent) execute(actions []vrrp.MemberAction) {
	// Adverts first: when several members change state in one step (a sync
	// group), every advert leaves before the slower netlink work starts.
	for _, ma := range actions {
		if _, ok := ma.Action.(vrrp.SendAdvert); ok {
			a.executeOne(a.members[ma.Member], ma.Action)
		}
	}
	for _, ma := range actions {
		if _, ok := ma.Action.(vrrp.SendAdvert); !ok {
			a.executeOne(a.members[ma.Member], ma.Action)
		}
	}
	a.followSyncState()
}

func (a *Agent) followSyncState() {
	active := a.sg != nil && a.sg.State() == vrrp.StateActive
	if active == a.syncActive {
		return
	}
	a.syncActive = active
	if active {
		a.met.syncActive.Set(1)
	} else {
		a.met.syncActive.Set(0)
	}
	if a.mgmt != nil {
		a.mgmt.SetActive(active)
	}
}

func (a *Agent) executeOne(m *member, act vrrp.Action) {
	name := m.group.Name
	switch act := act.(type) {
	case vrrp.SendAdvert:
		if err := m.conn.pc.WritePacket(act.Data); err != nil {
			a.met.sendErrors.WithLabelValues(name).Inc()
			if !m.sendFailing {
				m.sendFailing = true
				a.log.Warn("cannot send advert", "group", name, "interface", m.group.Interface, "err", err)
			}
			return
		}
		if m.sendFailing {
			m.sendFailing = false
			a.log.Info("sending adverts again", "group", name, "interface", m.group.Interface)
		}
		m.sentCounter.Inc()
	case vrrp.AddVIPs:
		for _, v := range act.VIPs {
			if err := a.net.AddVIP(m.group.Interface, v); err != nil {
				a.met.vipErrors.WithLabelValues(name, "add").Inc()
				a.log.Error("cannot add VIP", "group", name, "vip", v, "interface", m.group.Interface, "err", err)
				continue
			}
			m.mu.Lock()
			m.held[v] = true
			m.mu.Unlock()
		}
		a.log.Info("VIPs added", "group", name, "vips", act.VIPs)
	case vrrp.RemoveVIPs:
		m.mu.Lock()
		for _, v := range act.VIPs {
			delete(m.held, v)
		}
		m.mu.Unlock()
		for _, v := range act.VIPs {
			if err := a.net.RemoveVIP(m.group.Interface, v); err != nil {
				a.met.vipErrors.WithLabelValues(name, "remove").Inc()
				a.log.Error("cannot remove VIP", "group", name, "vip", v, "interface", m.group.Interface, "err", err)
			}
		}
		a.log.Info("VIPs removed", "group", name, "vips", act.VIPs)
	case vrrp.Announce:
		a.startBurst(m, act.VIPs)
	case vrrp.Transition:
		if act.From == vrrp.StateActive {
			m.stopBursts()
		}
		a.met.transitions.WithLabelValues(name, act.From.String(), act.To.String()).Inc()
		a.met.state.WithLabelValues(name).Set(float64(stateValue(act.To)))
		a.log.Info("transition", "group", name, "vrid", m.group.VRID, "family", m.group.Family,
			"from", act.From.String(), "to", act.To.String(), "reason", act.Reason)
	case vrrp.Dropped:
		reason := act.Reason.String()
		a.met.drops.WithLabelValues(name, reason).Inc()
		// A rogue or misconfigured sender can flood: one line per group and
		// reason every 10 s is enough to find it, the metric counts the rest.
		now := time.Now()
		if last, ok := m.lastDropLog[reason]; !ok || now.Sub(last) > 10*time.Second {
			m.lastDropLog[reason] = now
			a.log.Warn("advert dropped", "group", name, "reason", reason, "src", act.Src, "err", act.Err)
		}
		a.authAction(m, act)
	case vrrp.Disagreed:
		a.authAction(m, act)
	case vrrp.Rejected:
		a.log.Error("engine refused an event", "group", name, "err", act.Err)
	default:
		a.log.Warn("unknown engine action", "group", name, "action", fmt.Sprintf("%T", act))
	}
}

func stateValue(s vrrp.State) int {
	switch s {
	case vrrp.StateBackup:
		return 1
	case vrrp.StateActive:
		return 2
	}
	return 0
}

// startBurst sends the plan's announcement burst for vips in the
// background; it stops early when the group leaves Active or drops a VIP.
func (a *Agent) startBurst(m *member, vips []netip.Prefix) {
	ann, err := a.announcer(m.group.Interface)
	if err != nil {
		a.log.Error("cannot announce VIPs", "group", m.group.Name, "interface", m.group.Interface, "err", err)
		return
	}
	if a.plan.VRRP == nil {
		return
	}
	set := a.plan.VRRP.Announce
	ctx := m.burstCtx
	counter := a.met.announcements.WithLabelValues(m.group.Name)
	vips = slices.Clone(vips)
	log := a.log
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		sleep := func(d time.Duration) bool {
			if d <= 0 {
				return ctx.Err() == nil
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
				return true
			}
		}
		burst := func() bool {
			for i := range set.Count {
				if i > 0 && !sleep(set.Interval.D()) {
					return false
				}
				for _, v := range vips {
					if ctx.Err() != nil {
						return false
					}
					if !m.isHeld(v) {
						continue
					}
					if err := ann.Announce(v.Addr()); err != nil {
						log.Warn("announcement failed", "group", m.group.Name, "vip", v, "err", err)
						continue
					}
					counter.Inc()
				}
			}
			return true
		}
		if !burst() {
			return
		}
		if set.RepeatAfter > 0 && sleep(set.RepeatAfter.D()) {
			burst()
		}
	}()
}

func (a *Agent) announcer(ifname string) (*lockedAnnouncer, error) {
	if l := a.announcers[ifname]; l != nil {
		return l, nil
	}
	an, err := a.net.OpenAnnouncer(ifname)
	if err != nil {
		return nil, err
	}
	l := &lockedAnnouncer{a: an}
	a.announcers[ifname] = l
	return l, nil
}

// shutdown hands over: priority-0 adverts and VIPs removed by the engine,
// then every VIP of the plan removed again in case an action failed.
func (a *Agent) shutdown() {
	a.log.Info("shutting down")
	if a.sg != nil {
		a.execute(a.sg.Step(time.Now(), -1, vrrp.Shutdown{}))
	}
	for _, m := range a.members {
		m.stopBursts()
		for _, v := range m.group.VIPs {
			if err := a.net.RemoveVIP(m.group.Interface, v); err != nil {
				a.log.Error("cannot remove VIP at shutdown", "group", m.group.Name, "vip", v, "err", err)
			}
		}
	}
	a.closeAll()
	a.log.Info("stopped")
}

func (a *Agent) closeAll() {
	for _, m := range a.members {
		m.stopBursts()
	}
	for _, c := range a.conns {
		c.close()
	}
	a.conns = map[connKey]*conn{}
	a.closeWatchers()
	close(a.stop)
	a.wg.Wait()
	for _, l := range a.announcers {
		l.a.Close()
	}
	a.announcers = map[string]*lockedAnnouncer{}
	if a.mgmt != nil {
		if err := a.mgmt.Close(); err != nil {
			a.log.Error("closing management protocol", "err", err)
		}
		a.mgmt = nil
		a.mgmtReg.unregisterAll()
	}
}

// startReader pumps packets from one socket into the loop.
func (a *Agent) startReader(c *conn) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		buf := make([]byte, 65536)
		var failingSince time.Time
		var lastLog time.Time
		for {
			n, src, dst, ttl, err := c.pc.ReadPacket(buf)
			if err != nil {
				if c.shut.Load() {
					return
				}
				// A vanished interface fails every read: say so once, then
				// every minute, not ten times a second.
				now := time.Now()
				if failingSince.IsZero() {
					failingSince = now
				}
				if now.Sub(lastLog) >= time.Minute {
					lastLog = now
					a.log.Warn("cannot read VRRP socket", "interface", c.key.ifname, "family", c.key.family(),
						"failing_for", now.Sub(failingSince).Round(time.Millisecond).String(), "err", err)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if !failingSince.IsZero() {
				a.log.Info("reading VRRP socket again", "interface", c.key.ifname, "family", c.key.family())
				failingSince, lastLog = time.Time{}, time.Time{}
			}
			if acc := c.accept.Load(); n < 2 || acc == nil || !acc[buf[1]] {
				c.unknown.Inc()
				continue
			}
			pkt := inboundPacket{c: c, src: src, dst: dst, ttl: ttl, data: slices.Clone(buf[:n])}
			select {
			case a.inbound <- pkt:
			case <-a.stop:
				return
			}
		}
	}()
}

func (c *conn) close() {
	c.closed = true
	c.shut.Store(true)
	c.pc.Close()
}
