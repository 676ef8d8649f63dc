// Package engine is the management protocol as a pure state machine, in the
// shape of the VRRP engine: events in (a received datagram, a timer tick,
// becoming Active), actions out (send this datagram, this node went down, this
// message was dropped). It has no goroutines, sockets or clock: the caller
// passes the time with every event, so every behaviour can be scripted on a
// fake clock. docs/management-protocol.md is the specification.
//
// One Engine plays both roles of a node: it answers every director it hears,
// and while it is Active it broadcasts discovery and keeps the table of nodes.
package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

// Protocol timing constants (see the specification).
const (
	// MaxClockSkew is how far a message's timestamp may be from the
	// receiver's clock, either way, before it is dropped as stale.
	MaxClockSkew = 30 * time.Second
	// ReplayWindow is how many sequence numbers below the highest seen from
	// a sender are still accepted once each (datagrams may be reordered).
	ReplayWindow = 64
	// MinInterval and MaxInterval bound the interval a discovery may
	// announce (the plan's limits).
	MinInterval = 100 * time.Millisecond
	MaxInterval = time.Hour
)

// Member is a node allowed to speak the protocol.
type Member struct {
	Name     string
	Address  netip.Addr
	Director bool
}

// Config is everything the engine needs from the plan.
type Config struct {
	Cluster string
	Node    string
	// Address is this node's management IP; Broadcast the segment's
	// broadcast address that discovery goes to.
	Address   netip.Addr
	Broadcast netip.Addr
	// Addresses are reported in answers (at most wire.MaxAddresses).
	Addresses []netip.Prefix
	Digest    [wire.DigestLen]byte
	Interval  time.Duration
	DeadAfter int
	// Keys: the first signs, all verify. None means unauthenticated, which
	// the plan must have said explicitly.
	Keys    [][]byte
	Members []Member
	// UnicastDiscovery sends each discovery to every other member's
	// address instead of Broadcast (segments without broadcast); Broadcast
	// may then be unset. One message, one sequence number, one datagram
	// per member: each receiver's replay state sees it once.
	UnicastDiscovery bool
	// Version of the messages this node sends (0: wire.Version). Version 2
	// answers carry the distribution report (SetReport). Both versions are
	// accepted whatever this says.
	Version uint8
}

func (c *Config) validate() error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if c.Cluster == "" || len(c.Cluster) > wire.MaxNameLen {
		bad("cluster name must be 1..%d bytes", wire.MaxNameLen)
	}
	if !c.Address.Is4() {
		bad("management address %v is not IPv4", c.Address)
	}
	if !c.Broadcast.Is4() && !c.UnicastDiscovery {
		bad("broadcast address %v is not IPv4", c.Broadcast)
	}
	if len(c.Addresses) > wire.MaxAddresses {
		bad("%d addresses to report, at most %d", len(c.Addresses), wire.MaxAddresses)
	}
	if c.Interval < MinInterval || c.Interval > MaxInterval {
		bad("interval %v is outside %v..%v", c.Interval, MinInterval, MaxInterval)
	}
	if c.Version > wire.MaxVersion {
		bad("version %d is not spoken (at most %d)", c.Version, wire.MaxVersion)
	}
	if c.DeadAfter < 2 {
		bad("deadAfter %d is below 2", c.DeadAfter)
	}
	for i, k := range c.Keys {
		if len(k) < wire.MinKeyLen {
			bad("key %d is %d bytes, at least %d needed", i+1, len(k), wire.MinKeyLen)
		}
	}
	self := false
	seen := map[netip.Addr]bool{}
	for _, m := range c.Members {
		if m.Name == "" || len(m.Name) > wire.MaxNameLen || !m.Address.Is4() || seen[m.Address] {
			bad("member %q at %v: needs a name of 1..%d bytes and a unique IPv4 address", m.Name, m.Address, wire.MaxNameLen)
		}
		seen[m.Address] = true
		if m.Name == c.Node && m.Address == c.Address {
			self = true
		}
	}
	if !self {
		bad("this node (%s at %v) is not among the members", c.Node, c.Address)
	}
	if len(errs) > 0 {
		return errors.New("mgmt engine: " + strings.Join(errs, "; "))
	}
	return nil
}

// Status of a node in the director's table.
type Status string

const (
	StatusUnseen Status = "unseen" // listed in the plan, no valid answer since this director became Active
	StatusUp     Status = "up"
	StatusDown   Status = "down"
)

// Node is one row of the director's table.
type Node struct {
	Name      string         `json:"name"`
	Address   netip.Addr     `json:"address"`
	Director  bool           `json:"director,omitempty"`
	Self      bool           `json:"self,omitempty"`
	Status    Status         `json:"status"`
	Since     time.Time      `json:"since,omitzero"` // when Status last changed
	FirstSeen time.Time      `json:"firstSeen,omitzero"`
	LastSeen  time.Time      `json:"lastSeen,omitzero"`
	Health    string         `json:"health,omitempty"`
	Load      uint16         `json:"loadPerMille"`
	Digest    string         `json:"digest,omitempty"`
	Addresses []netip.Prefix `json:"addresses,omitempty"`
	BootID    string         `json:"bootId,omitempty"`
	Restarts  int            `json:"restarts"`
	// Reported: the last answer carried a distribution report (version
	// 2); Serving and MAC are from it.
	Reported bool   `json:"reported,omitempty"`
	Serving  bool   `json:"serving,omitempty"`
	MAC      string `json:"mac,omitempty"`
}

// DropReason is why a datagram was dropped; the string is a stable metric label.
type DropReason string

const (
	DropOwn            DropReason = "own"             // our own broadcast, looped back
	DropUnknownSource  DropReason = "unknown-source"  // source address not a plan member
	DropAuthMissing    DropReason = "auth-missing"    // unauthenticated message, but we have a key
	DropAuthUnexpected DropReason = "auth-unexpected" // authenticated message, but the plan says unauthenticated
	DropAuth           DropReason = "auth"            // MAC matches none of our keys
	DropCluster        DropReason = "cluster"         // another cluster's message
	DropName           DropReason = "name-mismatch"   // node name differs from the member at that address
	DropNotDirector    DropReason = "not-director"    // discovery from a member that is not a director
	DropNotActive      DropReason = "not-active"      // answer reached us while we are not Active
	DropInterval       DropReason = "interval"        // discovery announces an interval outside the limits
	DropStale          DropReason = "stale"           // timestamp further than MaxClockSkew from our clock
	DropReplay         DropReason = "replay"          // sequence number seen or too old, or an earlier boot
)

// DropReasons lists every reason, wire reasons included, for metrics.
var DropReasons = []DropReason{
	DropReason(wire.ReasonShort.String()), DropReason(wire.ReasonMagic.String()),
	DropReason(wire.ReasonVersion.String()), DropReason(wire.ReasonType.String()),
	DropReason(wire.ReasonAuthType.String()), DropReason(wire.ReasonLength.String()),
	DropReason(wire.ReasonMalformed.String()),
	DropOwn, DropUnknownSource, DropAuthMissing, DropAuthUnexpected, DropAuth, DropCluster,
	DropName, DropNotDirector, DropNotActive, DropInterval, DropStale, DropReplay,
}

// Stats counts what the engine did.
type Stats struct {
	DiscoveriesSent, AnswersSent         uint64
	DiscoveriesReceived, AnswersReceived uint64 // valid ones
	Drops                                map[DropReason]uint64
}

// Events.
type Event interface{ isEvent() }

// Tick fires every timer due at now; call it at Deadline.
type Tick struct{}

// SetActive says whether this node's VRRP sync group is Active.
type SetActive struct{ Active bool }

// Packet is one received datagram.
type Packet struct {
	Src  netip.Addr
	Data []byte
}

// SetLoad updates the load this node reports (per mille of capacity).
type SetLoad struct{ Load uint16 }

// SetReport updates the distribution report this node's version-2 answers
// carry (its proxy port check and its MAC).
type SetReport struct{ Report wire.Report }

// Reconfigure applies a new configuration in place: Active state, table
// rows of kept members, replay state, boot id and sequence numbers stay.
type Reconfigure struct{ Config Config }

// Shutdown sends a last answer with health "leaving" to every director this
// node answers, so they take it out of service at once, and stops.
type Shutdown struct{}

func (Tick) isEvent()        {}
func (SetActive) isEvent()   {}
func (Packet) isEvent()      {}
func (SetLoad) isEvent()     {}
func (SetReport) isEvent()   {}
func (Reconfigure) isEvent() {}
func (Shutdown) isEvent()    {}

// Actions.
type Action interface{ isAction() }

// Send asks the driver to send Data to To at the plan's port, from the
// management address.
type Send struct {
	To   netip.Addr
	Type wire.Type
	Data []byte
}

// NodeChanged reports a row of the table changing status (From == To for a
// restart seen while up). For logging.
type NodeChanged struct {
	Name     string
	Address  netip.Addr
	From, To Status
	Reason   string
}

// DirectorHeard: this node started answering a director (new, or restarted).
type DirectorHeard struct {
	Name    string
	Address netip.Addr
	BootID  uint64
}

// DirectorLost: a director went silent; this node stopped answering it.
type DirectorLost struct {
	Name    string
	Address netip.Addr
}

// Dropped reports a dropped datagram (also counted in Stats).
type Dropped struct {
	Reason DropReason
	Src    netip.Addr
	Err    error
}

// TableChanged: the table differs from the last one reported; the driver
// rewrites the table file. Emitted at once for status, identity or digest
// changes, and at most once per interval (with Refresh set) when only
// last-seen times and loads moved, which a driver may write less often.
type TableChanged struct{ Refresh bool }

func (Send) isAction()          {}
func (NodeChanged) isAction()   {}
func (DirectorHeard) isAction() {}
func (DirectorLost) isAction()  {}
func (Dropped) isAction()       {}
func (TableChanged) isAction()  {}

// peer is what the engine knows of one member: its plan entry, replay
// state, and its table row.
type peer struct {
	Member
	// Replay state: the sender's current boot, the highest sequence number
	// seen in it with a bitmap of the ReplayWindow below, and the newest
	// timestamp accepted from the sender across boots.
	known    bool
	boot     uint64
	maxSeq   uint64
	window   uint64
	lastTime int64

	row      Node
	rowBoot  uint64
	director *director // non-nil while we answer this member as a director
}

type director struct {
	boot       uint64
	interval   time.Duration
	lastHeard  time.Time
	nextAnswer time.Time
}

// Engine is the management protocol for one node.
type Engine struct {
	cfg    Config
	bootID uint64
	seq    uint64
	rng    *rand.Rand
	peers  map[netip.Addr]*peer
	verify *wire.Verifier
	dirs   map[netip.Addr]*peer // members we answer as directors (few)
	self   *peer
	load   uint16
	report wire.Report
	active bool
	closed bool

	nextDiscovery time.Time // zero when not Active
	nextExpiry    time.Time // no up row expires before this; zero when none is up
	dirty         bool      // last-seen or load changed since the last TableChanged

	stats Stats
}

// New returns an engine. bootID must be random and non-zero (it tells
// receivers that this sender restarted); rng spreads the first answer to a
// new director over a quarter interval (nil: answer at once).
func New(cfg Config, bootID uint64, rng *rand.Rand) (*Engine, error) {
	if bootID == 0 {
		return nil, errors.New("mgmt engine: boot id must not be 0")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{bootID: bootID, rng: rng, peers: map[netip.Addr]*peer{}, dirs: map[netip.Addr]*peer{}, stats: Stats{Drops: map[DropReason]uint64{}}}
	e.setConfig(cfg)
	return e, nil
}

func (e *Engine) setConfig(cfg Config) {
	cfg.Members = slices.Clone(cfg.Members)
	cfg.Addresses = slices.Clone(cfg.Addresses)
	e.cfg = cfg
	e.verify = wire.NewVerifier(cfg.Keys)
	keep := map[netip.Addr]bool{}
	for _, m := range cfg.Members {
		keep[m.Address] = true
		p := e.peers[m.Address]
		if p == nil {
			p = &peer{row: Node{Status: StatusUnseen}}
			e.peers[m.Address] = p
		}
		p.Member = m
		p.row.Name, p.row.Address, p.row.Director = m.Name, m.Address, m.Director
		if !m.Director {
			p.director = nil
			delete(e.dirs, m.Address)
		}
	}
	for a := range e.peers {
		if !keep[a] {
			delete(e.peers, a)
			delete(e.dirs, a)
		}
	}
	e.self = e.peers[cfg.Address]
	for _, p := range e.peers {
		p.row.Self = p == e.self
	}
	e.refreshSelf(time.Time{})
}

// Step processes one event at now and returns the actions to carry out, in order.
func (e *Engine) Step(now time.Time, ev Event) []Action {
	if e.closed {
		return nil
	}
	var out []Action
	switch ev := ev.(type) {
	case Tick:
		out = e.tick(now, out)
	case SetActive:
		out = e.setActive(now, ev.Active, out)
	case Packet:
		out = e.receive(now, ev, out)
	case SetLoad:
		e.load = ev.Load
	case SetReport:
		out = e.setReport(now, ev.Report, out)
	case Reconfigure:
		out = e.reconfigure(now, ev.Config, out)
	case Shutdown:
		for _, p := range e.directorPeers() {
			out = e.sendAnswer(now, p.Address, wire.HealthLeaving, out)
			p.director = nil
			delete(e.dirs, p.Address)
		}
		e.active = false
		e.nextDiscovery = time.Time{}
		e.closed = true
	}
	return out
}

// Deadline is when the next Tick is due; zero when no timer runs.
func (e *Engine) Deadline() time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if e.closed {
		return d
	}
	earlier(e.nextDiscovery)
	earlier(e.nextExpiry)
	for _, p := range e.dirs {
		earlier(p.director.nextAnswer)
		earlier(p.director.lastHeard.Add(e.deadTime(p.director.interval)))
	}
	return d
}

// Active reports whether the engine runs discovery.
func (e *Engine) Active() bool { return e.active }

// BootID is this node's boot id.
func (e *Engine) BootID() uint64 { return e.bootID }

// Table returns a copy of the director's table, sorted by name. While the
// node is not Active every member is "unseen".
func (e *Engine) Table() []Node {
	rows := make([]Node, 0, len(e.peers))
	for _, p := range e.peers {
		r := p.row
		r.Addresses = slices.Clone(r.Addresses)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

// Stats returns a copy of the counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Drops = make(map[DropReason]uint64, len(e.stats.Drops))
	for k, v := range e.stats.Drops {
		s.Drops[k] = v
	}
	return s
}

// Directors lists the directors this node currently answers, by name.
func (e *Engine) Directors() []string {
	var names []string
	for _, p := range e.directorPeers() {
		names = append(names, p.Name)
	}
	return names
}

func (e *Engine) deadTime(interval time.Duration) time.Duration {
	return time.Duration(e.cfg.DeadAfter) * interval
}

func (e *Engine) tick(now time.Time, out []Action) []Action {
	// Answers to every director due, and directors gone silent.
	for _, p := range e.directorPeers() {
		d := p.director
		if !now.Before(d.lastHeard.Add(e.deadTime(d.interval))) {
			p.director = nil
			delete(e.dirs, p.Address)
			out = append(out, DirectorLost{Name: p.Name, Address: p.Address})
			continue
		}
		if !now.Before(d.nextAnswer) {
			out = e.sendAnswer(now, p.Address, wire.HealthAvailable, out)
			d.nextAnswer = d.nextAnswer.Add(d.interval)
			if !d.nextAnswer.After(now) { // we were late by more than an interval: keep the phase, skip the missed ones
				d.nextAnswer = now.Add(d.interval)
			}
		}
	}
	if !e.active {
		return out
	}
	changed, refresh := false, false
	if !e.nextExpiry.IsZero() && !now.Before(e.nextExpiry) {
		changed = e.expire(now, &out)
	}
	if !now.Before(e.nextDiscovery) {
		out = e.sendDiscovery(now, out)
		e.nextDiscovery = e.nextDiscovery.Add(e.cfg.Interval)
		if !e.nextDiscovery.After(now) {
			e.nextDiscovery = now.Add(e.cfg.Interval)
		}
		refresh = e.dirty
	}
	if changed || refresh {
		e.dirty = false
		out = append(out, TableChanged{Refresh: !changed})
	}
	return out
}

// expire marks down every row whose last answer is DeadAfter intervals old
// and finds the next expiry. It reports whether a row changed.
func (e *Engine) expire(now time.Time, out *[]Action) bool {
	dead := e.deadTime(e.cfg.Interval)
	changed := false
	var next time.Time
	for _, p := range e.sortedPeers() {
		r := &p.row
		if r.Status != StatusUp || p == e.self {
			continue
		}
		at := r.LastSeen.Add(dead)
		if !now.Before(at) {
			e.setStatus(now, p, StatusDown, fmt.Sprintf("no valid answer for %d intervals (%v)", e.cfg.DeadAfter, dead), out)
			changed = true
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	e.nextExpiry = next
	return changed
}

func (e *Engine) setStatus(now time.Time, p *peer, to Status, reason string, out *[]Action) {
	from := p.row.Status
	p.row.Status = to
	p.row.Since = now
	*out = append(*out, NodeChanged{Name: p.Name, Address: p.Address, From: from, To: to, Reason: reason})
}

func (e *Engine) setActive(now time.Time, active bool, out []Action) []Action {
	if active == e.active {
		return out
	}
	e.active = active
	e.resetTable()
	if !active {
		e.nextDiscovery, e.nextExpiry = time.Time{}, time.Time{}
		return append(out, TableChanged{})
	}
	// Discover at once: the table starts empty and fills within an interval.
	e.refreshSelf(now)
	out = e.sendDiscovery(now, out)
	e.nextDiscovery = now.Add(e.cfg.Interval)
	return append(out, TableChanged{})
}

// resetTable forgets every row: a table is only as good as the discovery
// that fills it, and a director that was not Active has not been discovering.
func (e *Engine) resetTable() {
	for _, p := range e.peers {
		p.row = Node{Name: p.Name, Address: p.Address, Director: p.Director, Self: p == e.self, Status: StatusUnseen}
		p.rowBoot = 0
	}
	e.dirty = false
}

// refreshSelf keeps this node's own row current while Active: it answers
// itself without the network.
func (e *Engine) refreshSelf(now time.Time) {
	r := &e.self.row
	r.Addresses = slices.Clone(e.cfg.Addresses)
	r.Digest = digestString(e.cfg.Digest)
	r.BootID = bootString(e.bootID)
	if !e.active || now.IsZero() {
		return
	}
	if r.Status != StatusUp {
		r.Status, r.Since = StatusUp, now
		if r.FirstSeen.IsZero() {
			r.FirstSeen = now
		}
	}
	r.LastSeen = now
	r.Health = wire.HealthAvailable.String()
	r.Load = e.load
	e.selfReport()
}

// selfReport copies this node's own report into its row (version 2 only).
func (e *Engine) selfReport() bool {
	r := &e.self.row
	old := [3]any{r.Reported, r.Serving, r.MAC}
	r.Reported = e.cfg.Version >= wire.Version2
	r.Serving, r.MAC = false, ""
	if r.Reported {
		r.Serving, r.MAC = e.report.Serving, macString(e.report.MAC)
	}
	return old != [3]any{r.Reported, r.Serving, r.MAC}
}

// setReport takes a new report of this node: answers carry it from now
// on, and the Active's own row changes at once.
func (e *Engine) setReport(now time.Time, rep wire.Report, out []Action) []Action {
	if rep == e.report {
		return out
	}
	e.report = rep
	if e.active && e.selfReport() {
		out = append(out, TableChanged{})
	}
	return out
}

func macString(m [6]byte) string {
	if m == [6]byte{} {
		return ""
	}
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func (e *Engine) reconfigure(now time.Time, cfg Config, out []Action) []Action {
	if err := cfg.validate(); err != nil {
		// The driver validates before; an invalid config changes nothing.
		return out
	}
	e.setConfig(cfg)
	if e.active {
		e.refreshSelf(now)
		if limit := now.Add(cfg.Interval); e.nextDiscovery.After(limit) {
			e.nextDiscovery = limit
		}
		e.nextExpiry = now // rescan with the new interval at the next tick
		out = append(out, TableChanged{})
	}
	return out
}

func (e *Engine) nextSeq() uint64 {
	e.seq++
	return e.seq
}

func (e *Engine) signingKey() []byte {
	if len(e.cfg.Keys) == 0 {
		return nil
	}
	return e.cfg.Keys[0]
}

func (e *Engine) sendDiscovery(now time.Time, out []Action) []Action {
	e.refreshSelf(now)
	m := &wire.Message{
		Header: wire.Header{Version: e.cfg.Version, Type: wire.TypeDiscovery, BootID: e.bootID, Seq: e.nextSeq(), Time: now.UnixMilli()},
		Discovery: &wire.Discovery{
			Cluster: e.cfg.Cluster, Node: e.cfg.Node, Digest: e.cfg.Digest,
			IntervalMillis: uint32(e.cfg.Interval / time.Millisecond),
		},
	}
	b, err := wire.Seal(m, e.signingKey())
	if err != nil { // validate() rules this out
		panic("mgmt engine: discovery does not encode: " + err.Error())
	}
	e.stats.DiscoveriesSent++
	if !e.cfg.UnicastDiscovery {
		return append(out, Send{To: e.cfg.Broadcast, Type: wire.TypeDiscovery, Data: b})
	}
	for _, p := range e.sortedPeers() {
		if p != e.self {
			out = append(out, Send{To: p.Address, Type: wire.TypeDiscovery, Data: b})
		}
	}
	return out
}

func (e *Engine) sendAnswer(now time.Time, to netip.Addr, h wire.Health, out []Action) []Action {
	m := &wire.Message{
		Header: wire.Header{Version: e.cfg.Version, Type: wire.TypeAnswer, BootID: e.bootID, Seq: e.nextSeq(), Time: now.UnixMilli()},
		Answer: &wire.Answer{
			Cluster: e.cfg.Cluster, Node: e.cfg.Node, Digest: e.cfg.Digest,
			Health: h, Load: e.load, Addresses: e.cfg.Addresses,
		},
	}
	if e.cfg.Version >= wire.Version2 {
		rep := e.report
		m.Answer.Report = &rep
	}
	b, err := wire.Seal(m, e.signingKey())
	if err != nil {
		panic("mgmt engine: answer does not encode: " + err.Error())
	}
	e.stats.AnswersSent++
	return append(out, Send{To: to, Type: wire.TypeAnswer, Data: b})
}

func (e *Engine) drop(out []Action, reason DropReason, src netip.Addr, err error) []Action {
	e.stats.Drops[reason]++
	return append(out, Dropped{Reason: reason, Src: src, Err: err})
}

func (e *Engine) receive(now time.Time, pkt Packet, out []Action) []Action {
	src := pkt.Src.Unmap()
	if src == e.cfg.Address {
		return e.drop(out, DropOwn, src, nil)
	}
	// Membership first: a stranger costs us a map lookup, not an HMAC.
	p := e.peers[src]
	if p == nil {
		return e.drop(out, DropUnknownSource, src, fmt.Errorf("%v is not a member of cluster %s", src, e.cfg.Cluster))
	}
	m, err := wire.Parse(pkt.Data)
	if err != nil {
		var pe *wire.ParseError
		reason := DropReason(wire.ReasonMalformed.String())
		if errors.As(err, &pe) {
			reason = DropReason(pe.Reason.String())
		}
		return e.drop(out, reason, src, err)
	}
	switch {
	case len(e.cfg.Keys) == 0 && m.Auth != wire.AuthNone:
		return e.drop(out, DropAuthUnexpected, src, errors.New("authenticated message, but this node runs unauthenticated"))
	case len(e.cfg.Keys) > 0 && m.Auth == wire.AuthNone:
		return e.drop(out, DropAuthMissing, src, errors.New("unauthenticated message, but this node has a key"))
	case len(e.cfg.Keys) > 0 && e.verify.Verify(pkt.Data) < 0:
		return e.drop(out, DropAuth, src, errors.New("MAC does not match any key"))
	}
	cluster, name := "", ""
	if m.Discovery != nil {
		cluster, name = m.Discovery.Cluster, m.Discovery.Node
	} else {
		cluster, name = m.Answer.Cluster, m.Answer.Node
	}
	if cluster != e.cfg.Cluster {
		return e.drop(out, DropCluster, src, fmt.Errorf("cluster %q, we are %q", cluster, e.cfg.Cluster))
	}
	if name != p.Name {
		return e.drop(out, DropName, src, fmt.Errorf("says it is %q, the plan has %q at %v", name, p.Name, src))
	}
	var interval time.Duration
	switch m.Type {
	case wire.TypeDiscovery:
		if !p.Director {
			return e.drop(out, DropNotDirector, src, fmt.Errorf("discovery from %s, which is not a director", p.Name))
		}
		interval = time.Duration(m.Discovery.IntervalMillis) * time.Millisecond
		if interval < MinInterval || interval > MaxInterval {
			return e.drop(out, DropInterval, src, fmt.Errorf("interval %v is outside %v..%v", interval, MinInterval, MaxInterval))
		}
	case wire.TypeAnswer:
		if !e.active {
			return e.drop(out, DropNotActive, src, fmt.Errorf("answer from %s while not Active", p.Name))
		}
	}
	// Compared in milliseconds: a forged timestamp near the int64 limits
	// must not overflow into the accepted range.
	nowMs, skewMs := now.UnixMilli(), MaxClockSkew.Milliseconds()
	if m.Time < nowMs-skewMs || m.Time > nowMs+skewMs {
		return e.drop(out, DropStale, src, fmt.Errorf("timestamp %d ms is more than %v from our clock (%d ms)", m.Time, MaxClockSkew, nowMs))
	}
	if err := p.accept(m); err != nil {
		return e.drop(out, DropReplay, src, err)
	}
	if m.Type == wire.TypeDiscovery {
		e.stats.DiscoveriesReceived++
		return e.heardDirector(now, p, m.BootID, interval, out)
	}
	e.stats.AnswersReceived++
	return e.answered(now, p, m, out)
}

// accept applies replay protection and records the message as seen.
func (p *peer) accept(m *wire.Message) error {
	switch {
	case !p.known:
		p.known = true
	case m.BootID != p.boot:
		// A new boot is believed only if it is newer than anything the
		// sender told us before; otherwise it is an old boot replayed.
		if m.Time <= p.lastTime {
			return fmt.Errorf("boot %016x is not newer than the sender's last accepted message", m.BootID)
		}
	case m.Seq > p.maxSeq:
		shift := m.Seq - p.maxSeq
		if shift >= ReplayWindow {
			p.window = 0
		} else {
			p.window <<= shift
		}
		p.window |= 1
		p.maxSeq = m.Seq
		p.lastTime = max(p.lastTime, m.Time)
		return nil
	default:
		back := p.maxSeq - m.Seq
		if back >= ReplayWindow {
			return fmt.Errorf("sequence %d is more than %d below the highest seen (%d)", m.Seq, ReplayWindow, p.maxSeq)
		}
		if p.window&(1<<back) != 0 {
			return fmt.Errorf("sequence %d seen before", m.Seq)
		}
		p.window |= 1 << back
		p.lastTime = max(p.lastTime, m.Time)
		return nil
	}
	p.boot, p.maxSeq, p.window = m.BootID, m.Seq, 1
	p.lastTime = max(p.lastTime, m.Time)
	return nil
}

func (e *Engine) heardDirector(now time.Time, p *peer, boot uint64, interval time.Duration, out []Action) []Action {
	d := p.director
	if d != nil && d.boot == boot {
		d.lastHeard = now
		if interval != d.interval {
			d.interval = interval
			if limit := now.Add(interval); d.nextAnswer.After(limit) {
				d.nextAnswer = limit
			}
		}
		return out
	}
	// A new director, or one that restarted with an empty table: answer
	// soon, spread over a quarter interval so that a large cluster does not
	// answer in one burst, then every interval.
	var jitter time.Duration
	if e.rng != nil {
		jitter = time.Duration(e.rng.Int64N(int64(interval/4) + 1))
	}
	p.director = &director{boot: boot, interval: interval, lastHeard: now, nextAnswer: now.Add(jitter)}
	e.dirs[p.Address] = p
	out = append(out, DirectorHeard{Name: p.Name, Address: p.Address, BootID: boot})
	if jitter == 0 {
		out = e.sendAnswer(now, p.Address, wire.HealthAvailable, out)
		p.director.nextAnswer = now.Add(interval)
	}
	return out
}

func (e *Engine) answered(now time.Time, p *peer, m *wire.Message, out []Action) []Action {
	a := m.Answer
	r := &p.row
	changed := false
	if r.FirstSeen.IsZero() {
		r.FirstSeen = now
	}
	r.LastSeen = now
	r.Load = a.Load
	e.dirty = true
	if d := digestString(a.Digest); d != r.Digest {
		r.Digest = d
		changed = true
	}
	if !slices.Equal(a.Addresses, r.Addresses) {
		r.Addresses = slices.Clone(a.Addresses)
		changed = true
	}
	if h := a.Health.String(); h != r.Health {
		r.Health = h
		changed = true
	}
	// The distribution report: a change decides whether the node gets
	// traffic, so the table changes at once.
	reported, serving, mac := a.Report != nil, false, ""
	if reported {
		serving, mac = a.Report.Serving, macString(a.Report.MAC)
	}
	if reported != r.Reported || serving != r.Serving || mac != r.MAC {
		r.Reported, r.Serving, r.MAC = reported, serving, mac
		changed = true
	}
	restarted := p.rowBoot != 0 && p.rowBoot != m.BootID
	p.rowBoot = m.BootID
	r.BootID = bootString(m.BootID)
	switch {
	case a.Health == wire.HealthLeaving:
		if r.Status != StatusDown {
			e.setStatus(now, p, StatusDown, "node is leaving (shutting down)", &out)
			changed = true
		}
	case r.Status != StatusUp:
		reason := "first valid answer"
		if r.Status == StatusDown {
			reason = "answering again"
		}
		e.setStatus(now, p, StatusUp, reason, &out)
		changed = true
		if restarted {
			r.Restarts++
		}
	case restarted:
		r.Restarts++
		out = append(out, NodeChanged{Name: p.Name, Address: p.Address, From: StatusUp, To: StatusUp, Reason: "restarted (new boot id)"})
		changed = true
	}
	if r.Status == StatusUp {
		if at := now.Add(e.deadTime(e.cfg.Interval)); e.nextExpiry.IsZero() || at.Before(e.nextExpiry) {
			e.nextExpiry = at
		}
	}
	if changed {
		e.dirty = false
		out = append(out, TableChanged{})
	}
	return out
}

func (e *Engine) directorPeers() []*peer {
	ps := make([]*peer, 0, len(e.dirs))
	for _, p := range e.dirs {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *peer) int { return a.Address.Compare(b.Address) })
	return ps
}

func (e *Engine) sortedPeers() []*peer {
	ps := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *peer) int { return a.Address.Compare(b.Address) })
	return ps
}

func digestString(d [wire.DigestLen]byte) string {
	if d == [wire.DigestLen]byte{} {
		return ""
	}
	return "sha256:" + hex.EncodeToString(d[:])
}

func bootString(b uint64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%016x", b)
}
