// Package distributor runs traffic distribution on a node
// (docs/distribution.md): while the node's VRRP sync group is Active it
// follows the management table, decides the mapping (runtime/distrib) and
// programs it (runtime/forward); on every node that takes a share it keeps
// the rule that accepts the forwarded traffic.
//
// It rides on the management service: StartManagement wraps
// runtime/mgmt's Service, so the agent drives both through the one
// Management interface (SetActive follows the sync group, Update on
// reload, Close at stop) and /status shows the distribution beside the
// management table.
package distributor

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/plan"
)

// Source is the management table the distributor follows.
type Source interface {
	Snapshot() mgmt.Status
	Changes() <-chan struct{}
}

// Kernel programs forwarding (runtime/forward.Driver) and reads the
// neighbour table; tests use a fake.
type Kernel interface {
	Apply(forward.State) error
	Clean() error
	// Neighbors maps the IPv4 neighbours of an interface to their MAC.
	Neighbors(ifname string) (map[netip.Addr]net.HardwareAddr, error)
	// Link returns an interface's index and MAC.
	Link(ifname string) (int, net.HardwareAddr, error)
}

// Distributor is the distribution of one node.
type Distributor struct {
	log *slog.Logger
	src Source
	k   Kernel
	met *metrics
	now func() time.Time

	mu        sync.Mutex
	p         *plan.Plan // nil: the plan distributes nothing
	active    bool
	since     time.Time // became Active
	holdUntil time.Time
	weights   map[string]int
	status    Status
	lastKey   string // of the state last applied
	closed    bool

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// Status is the distribution part of /status.
type Status struct {
	Mode      string         `json:"mode"`
	Active    bool           `json:"active"`           // programming the mapping as the Active director
	Hold      bool           `json:"hold"`             // new Active waiting for the nodes' answers
	NodeRule  bool           `json:"nodeRule"`         // this node accepts forwarded traffic
	Digest    string         `json:"digest,omitempty"` // of the mapping in the kernel
	Slots     int            `json:"slots,omitempty"`
	Nodes     []Share        `json:"nodes,omitempty"`
	Applied   time.Time      `json:"applied,omitzero"`
	ApplyTime string         `json:"applyTime,omitempty"` // duration of the last transaction
	Error     string         `json:"error,omitempty"`     // of the last transaction, if it failed
	Counts    map[string]int `json:"counts,omitempty"`    // eligible and left-out nodes
}

// Share is a node's row: whether it gets traffic, why not, its share.
type Share struct {
	distrib.Share
	MAC string `json:"mac,omitempty"`
}

// New starts the distributor for p (nil Distribution: idle) and cleans
// what a crashed run may have left in the kernel.
func New(p *plan.Plan, src Source, k Kernel, log *slog.Logger, reg prometheus.Registerer) (*Distributor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Distributor{log: log, src: src, k: k, now: time.Now, weights: map[string]int{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	d.met = newMetrics(d)
	if reg != nil {
		if err := reg.Register(d.met); err != nil {
			return nil, fmt.Errorf("distributor: metrics: %w", err)
		}
	}
	if err := k.Clean(); err != nil {
		if p != nil && p.Distribution != nil {
			return nil, fmt.Errorf("distributor: removing leftover tables: %w", err)
		}
		// A plan without distribution needs no nftables: say so, go on.
		log.Warn("cannot check for leftover distribution tables (nftables unavailable?)", "err", err)
	}
	d.mu.Lock()
	d.setPlanLocked(p)
	d.reconcileLocked()
	d.mu.Unlock()
	d.wg.Add(1)
	go d.loop()
	return d, nil
}

func (d *Distributor) setPlanLocked(p *plan.Plan) {
	d.p = nil
	if p != nil && p.Distribution != nil {
		d.p = p
	}
}

// SetActive follows the sync group. Becoming Active starts the hold: the
// mapping is programmed once every node has answered or the first-answer
// window has passed.
func (d *Distributor) SetActive(active bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active == active {
		return
	}
	d.active = active
	if active && d.p != nil && d.p.Management != nil {
		d.since = d.now()
		d.holdUntil = distrib.HoldUntil(d.since, d.p.Management.DiscoveryInterval.D())
		d.weights = map[string]int{}
	}
	d.reconcileLocked()
	d.poke()
}

// Update takes a new plan; the kernel follows at once.
func (d *Distributor) Update(p *plan.Plan) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("distributor: closed")
	}
	d.setPlanLocked(p)
	d.reconcileLocked()
	return nil
}

// Close removes everything this package programmed.
func (d *Distributor) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.done)
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastKey = ""
	return d.k.Clean()
}

// Status returns the distribution as /status shows it.
func (d *Distributor) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	s.Nodes = append([]Share(nil), s.Nodes...)
	return s
}

func (d *Distributor) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// loop recomputes on every table change and at the end of the hold.
func (d *Distributor) loop() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		wait := time.Hour
		if d.active && !d.holdUntil.IsZero() {
			wait = max(d.holdUntil.Sub(d.now()), 0)
		}
		d.mu.Unlock()
		t.Reset(wait)
		select {
		case <-d.done:
			return
		case <-d.src.Changes():
		case <-d.kick:
		case <-t.C:
		}
		d.mu.Lock()
		if !d.closed {
			d.reconcileLocked()
		}
		d.mu.Unlock()
	}
}

// reconcileLocked decides the state the kernel must hold and applies it
// when it differs from the last one applied.
func (d *Distributor) reconcileLocked() {
	st := forward.State{}
	status := Status{}
	if p := d.p; p != nil {
		dist := p.Distribution
		status.Mode = dist.Mode
		if dist.Scans && dist.Mode == plan.DistributionL2 {
			st.Node = &forward.Node{VIPs: dist.VIPs, Ports: ports(dist.Ports), ProxyPort: uint16(dist.ProxyPort)}
			status.NodeRule = true
		}
		if d.active && p.VRRP != nil && len(dist.Nodes) > 0 {
			dir, shares, digest := d.directorLocked(p)
			st.Director = dir
			status.Active, status.Hold, status.Digest, status.Nodes = true, dir.Hold, digest, shares
			status.Slots = dist.Slots
			status.Counts = map[string]int{}
			for _, s := range shares {
				if s.Eligible {
					status.Counts["eligible"]++
				} else {
					status.Counts[s.Reason]++
				}
			}
		}
	}
	key := stateKey(st)
	status.Applied, status.ApplyTime, status.Error = d.status.Applied, d.status.ApplyTime, d.status.Error
	if key != d.lastKey {
		start := d.now()
		err := d.k.Apply(st)
		took := d.now().Sub(start)
		d.met.applied(err, took)
		if err != nil {
			status.Error = err.Error()
			d.log.Error("programming traffic distribution failed; the kernel keeps the previous tables", "err", err)
		} else {
			d.lastKey = key
			status.Applied, status.ApplyTime, status.Error = d.now(), took.String(), ""
			var out []string
			for _, n := range status.Nodes {
				if !n.Eligible {
					out = append(out, n.Name+":"+n.Reason)
				}
			}
			d.log.Info("traffic distribution programmed", "active", status.Active, "hold", status.Hold,
				"digest", status.Digest, "eligible", status.Counts["eligible"], "out", strings.Join(out, " "), "took", took)
		}
	}
	d.status = status
}

// directorLocked builds the Active director's forwarding from the table.
func (d *Distributor) directorLocked(p *plan.Plan) (*forward.Director, []Share, string) {
	dist := p.Distribution
	snap := d.src.Snapshot()
	rows := map[string]engine.Node{}
	for _, r := range snap.Nodes {
		rows[r.Name] = r
	}
	var neigh map[netip.Addr]net.HardwareAddr
	if dist.Mode == plan.DistributionL2 {
		var err error
		if neigh, err = d.k.Neighbors(dist.Interface); err != nil {
			d.log.Warn("reading the neighbour table; MACs are not cross-checked", "err", err)
		}
	}
	var obs []distrib.Observation
	for _, n := range dist.Nodes {
		r := rows[n.Name]
		o := distrib.Observation{
			Name: n.Name, Director: n.Director,
			Up:      snap.Active && r.Status == engine.StatusUp && r.Health == "available",
			Leaving: r.Health == "leaving", Reported: r.Reported, Serving: r.Serving, Load: r.Load,
		}
		if m, err := net.ParseMAC(r.MAC); err == nil {
			o.MAC = m
		}
		if m, ok := neigh[n.Address]; ok {
			o.NeighborMAC = m
		}
		obs = append(obs, o)
	}
	cfg := distrib.Config{Mode: dist.Mode, Slots: dist.Slots, DirectorsScan: dist.DirectorsScan,
		LoadWeighting: dist.LoadWeighting, Self: p.Node}
	dec := distrib.Decide(cfg, obs, d.weights)
	d.weights = map[string]int{}
	for _, s := range dec.Shares {
		if s.Eligible {
			d.weights[s.Name] = s.Weight
		}
	}
	hold := !d.holdUntil.IsZero() && d.now().Before(d.holdUntil) && !distrib.AllHeard(obs, p.Node)
	if !hold {
		d.holdUntil = time.Time{} // the hold is over for this term
	}
	dir := &forward.Director{
		L2: dist.Mode == plan.DistributionL2, VIPInterface: dist.VIPInterface, OutInterface: dist.Interface,
		VIPs: dist.VIPs, Ports: ports(dist.Ports), ProxyPort: uint16(dist.ProxyPort), Seed: dist.Seed,
		Slots: make([]forward.Target, dist.Slots), Hold: hold,
	}
	byName := map[string]plan.DistributionNode{}
	for _, n := range dist.Nodes {
		byName[n.Name] = n
		if n.Name == p.Node {
			dir.Self = n.Address
		}
	}
	if !dir.Self.IsValid() {
		dir.Self = selfAddr(p)
	}
	if idx, mac, err := d.k.Link(dist.Interface); err == nil {
		dir.OutIfindex, dir.OutMAC = idx, mac
	} else {
		d.log.Warn("reading the distribution interface", "interface", dist.Interface, "err", err)
	}
	macs := map[string]net.HardwareAddr{}
	var shares []Share
	for _, s := range dec.Shares {
		macs[s.Name] = s.MAC
		sh := Share{Share: s}
		if s.MAC != nil {
			sh.MAC = s.MAC.String()
		}
		shares = append(shares, sh)
	}
	for s := range dir.Slots {
		name := dec.Table.Name(s)
		if name == "" || name == p.Node {
			continue
		}
		dir.Slots[s] = forward.Target{MAC: macs[name], Addr: byName[name].Address}
	}
	return dir, shares, dec.Table.Digest()
}

// selfAddr is this node's first IPv4 address on the distribution interface.
func selfAddr(p *plan.Plan) netip.Addr {
	for _, in := range p.Interfaces {
		if in.Name == p.Distribution.Interface {
			for _, a := range in.Addresses {
				if a.Addr().Is4() {
					return a.Addr()
				}
			}
		}
	}
	return netip.Addr{}
}

func ports(ps []int) []uint16 {
	out := make([]uint16, len(ps))
	for i, p := range ps {
		out[i] = uint16(p)
	}
	return out
}

// stateKey identifies a state, to skip transactions that change nothing.
func stateKey(s forward.State) string {
	var b bytes.Buffer
	if n := s.Node; n != nil {
		fmt.Fprintf(&b, "node %v %v %d\n", n.VIPs, n.Ports, n.ProxyPort)
	}
	if d := s.Director; d != nil {
		fmt.Fprintf(&b, "dir %v %s %d %s %s %v %v %d %d %v %v\n", d.L2, d.VIPInterface, d.OutIfindex, d.OutInterface, d.OutMAC,
			d.VIPs, d.Ports, d.ProxyPort, d.Seed, d.Self, d.Hold)
		for _, t := range d.Slots {
			fmt.Fprintf(&b, "%s %s\n", t.MAC, t.Addr)
		}
	}
	return b.String()
}
