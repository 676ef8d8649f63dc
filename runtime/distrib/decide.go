package distrib

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Forwarding modes.
const (
	// ModeL2: the director rewrites the destination MAC and forwards the
	// frame; the node accepts the VIP traffic itself and answers directly.
	ModeL2 = "l2"
	// ModeNAT: the director rewrites the destination address and port
	// (DNAT) and the source to its own (masquerade), so replies return
	// through it; for nodes it cannot reach at layer 2.
	ModeNAT = "nat"
)

// Reasons a node gets no traffic; stable strings for /status and metrics.
const (
	ReasonDown         = "down"          // no valid answer within the dead time, or never
	ReasonLeaving      = "leaving"       // the node said it is shutting down
	ReasonNoReport     = "no-report"     // its answers carry no distribution fields (protocol v1)
	ReasonProxyClosed  = "proxy-closed"  // its own check finds the proxy port closed
	ReasonNoMAC        = "no-mac"        // l2: no MAC announced
	ReasonBadMAC       = "bad-mac"       // l2: zero, multicast or broadcast MAC
	ReasonMACDuplicate = "mac-duplicate" // l2: another node announces the same MAC
	ReasonMACMismatch  = "mac-mismatch"  // l2: the MAC answering ARP for the node differs
	ReasonDirector     = "director"      // directors take no share (directorsScan: false)
)

// Reasons lists every reason, for metrics.
var Reasons = []string{ReasonDown, ReasonLeaving, ReasonNoReport, ReasonProxyClosed, ReasonNoMAC,
	ReasonBadMAC, ReasonMACDuplicate, ReasonMACMismatch, ReasonDirector}

// Config is what the plan says about the distribution, as the director
// decides it.
type Config struct {
	Mode          string
	Slots         int
	DirectorsScan bool
	// LoadWeighting gives lightly loaded nodes more slots (levels 1..4).
	LoadWeighting bool
	// Self is this director's name: its own row needs no MAC.
	Self string
}

// Observation is what the Active director knows of one node.
type Observation struct {
	Name     string
	Director bool
	// Up: the management table has the node up and available.
	Up      bool
	Leaving bool
	// Reported: its answer carries the distribution fields.
	Reported bool
	Serving  bool
	MAC      net.HardwareAddr
	// NeighborMAC is what the director's neighbour table has for the
	// node's address (nil: unknown, not checked).
	NeighborMAC net.HardwareAddr
	Load        uint16 // per mille
}

// Share is one node's row of a decision.
type Share struct {
	Name     string           `json:"name"`
	Eligible bool             `json:"eligible"`
	Reason   string           `json:"reason,omitempty"`
	MAC      net.HardwareAddr `json:"-"`
	Weight   int              `json:"weight,omitempty"`
	Slots    int              `json:"slots"`
	Share    float64          `json:"share"` // fraction of the slots
}

// Decision is the mapping the director programs and why each node is in
// or out of it.
type Decision struct {
	Table  Table
	Shares []Share // sorted by name
}

// Decide picks the eligible nodes and builds the table. prev holds the
// weights of the previous decision (nil: none), so that a load hovering at
// a level boundary does not move slots back and forth.
func Decide(cfg Config, obs []Observation, prev map[string]int) Decision {
	shares := make([]Share, len(obs))
	macs := map[string]int{}
	for i, o := range obs {
		s := Share{Name: o.Name, MAC: o.MAC, Reason: reject(cfg, o)}
		if s.Reason == "" && cfg.Mode == ModeL2 && o.Name != cfg.Self {
			macs[string(o.MAC)]++
		}
		shares[i] = s
	}
	var backends []Backend
	for i := range shares {
		s := &shares[i]
		if s.Reason == "" && cfg.Mode == ModeL2 && s.Name != cfg.Self && macs[string(s.MAC)] > 1 {
			s.Reason = ReasonMACDuplicate
		}
		if s.Reason != "" {
			continue
		}
		s.Eligible, s.Weight = true, 1
		if cfg.LoadWeighting {
			s.Weight = LoadWeight(obs[i].Load, prev[s.Name])
		}
		backends = append(backends, Backend{Name: s.Name, Weight: s.Weight})
	}
	t := Build(backends, cfg.Slots)
	counts := t.Counts()
	for i := range shares {
		s := &shares[i]
		s.Slots = counts[s.Name]
		if len(t.Owner) > 0 {
			s.Share = float64(s.Slots) / float64(len(t.Owner))
		}
	}
	slices.SortFunc(shares, func(a, b Share) int { return strings.Compare(a.Name, b.Name) })
	return Decision{Table: t, Shares: shares}
}

// reject returns why o gets no traffic, or "".
func reject(cfg Config, o Observation) string {
	switch {
	case o.Director && !cfg.DirectorsScan:
		return ReasonDirector
	case o.Leaving:
		return ReasonLeaving
	case !o.Up:
		return ReasonDown
	case !o.Reported:
		return ReasonNoReport
	case !o.Serving:
		return ReasonProxyClosed
	case cfg.Mode != ModeL2 || o.Name == cfg.Self:
		return ""
	case len(o.MAC) == 0:
		return ReasonNoMAC
	case !ValidMAC(o.MAC):
		return ReasonBadMAC
	case o.NeighborMAC != nil && !bytes.Equal(o.NeighborMAC, o.MAC):
		return ReasonMACMismatch
	}
	return ""
}

// ValidMAC reports whether m can be a node's unicast Ethernet address:
// six bytes, not all zero, group bit clear (no multicast or broadcast).
func ValidMAC(m net.HardwareAddr) bool {
	return len(m) == 6 && m[0]&1 == 0 && !bytes.Equal(m, make([]byte, 6))
}

// Load levels: a node's weight from its load (per mille of capacity).
// Upper bounds of levels 4, 3 and 2; above the last, weight 1.
var loadBounds = [...]uint16{250, 500, 1000}

// loadHysteresis is how far past a bound the load must go before the
// weight changes from the previous one.
const loadHysteresis = 50

// LoadWeight maps a load to a weight 1..4; prev (0: none) is kept unless
// the load is clearly outside its band.
func LoadWeight(load uint16, prev int) int {
	w := 1
	for i, b := range loadBounds {
		if load < b {
			w = 4 - i
			break
		}
	}
	if prev < 1 || prev > 4 || prev == w {
		return w
	}
	// The band of prev, widened by the hysteresis.
	lo, hi := 0, 65535
	if idx := 4 - prev; idx < len(loadBounds) {
		hi = int(loadBounds[idx]) + loadHysteresis
	}
	if idx := 3 - prev; idx >= 0 {
		lo = int(loadBounds[idx]) - loadHysteresis
	}
	if int(load) >= lo && int(load) < hi {
		return prev
	}
	return w
}

// HoldUntil is when a director that became Active at since programs its
// first mapping even if not every node has answered: the protocol's
// first-answer window (a quarter interval) plus a margin for the wire.
// Before that it holds the distributed traffic (drops it, clients
// retransmit) instead of sending clients to the wrong node, which would
// break their connections.
func HoldUntil(since time.Time, interval time.Duration) time.Time {
	return since.Add(interval/4 + max(interval/10, 20*time.Millisecond))
}

// AllHeard reports whether every expected node has a row that is up or
// reported leaving: the mapping cannot change any more by waiting.
func AllHeard(obs []Observation, self string) bool {
	for _, o := range obs {
		if o.Name != self && !o.Up && !o.Leaving {
			return false
		}
	}
	return true
}

// ClientNode is where a client goes under t (by the kernel's hash).
func ClientNode(t Table, client netip.Addr, seed uint32) string {
	if len(t.Owner) == 0 {
		return ""
	}
	return t.Name(Slot(client, seed, len(t.Owner)))
}
