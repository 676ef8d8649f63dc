// Package distributor decides, purely, what a node's kernel must hold for
// traffic distribution (docs/distribution.md): from the plan, whether the
// node is Active, its management table and its neighbour table, the
// forwarding state that runtime/forward programs, and the status that
// /status and the metrics show.
//
// runtime/node calls Desired whenever an input changes (a plan committed,
// the node becoming Active or not, the management table changing, the
// neighbour table read, the takeover hold ending) and emits the result as
// a Forwarding effect; the executor applies it with runtime/forward.
package distributor

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/plan"
)

// Input is everything a decision depends on.
type Input struct {
	Plan *plan.Plan // the committed plan; no Distribution: nothing to do
	// Active: the node's VRRP sync group is Active (and not in Fault).
	Active bool
	// Table is the management protocol's view (only an Active node's is
	// live).
	Table mgmt.Status
	// Neighbors maps the IPv4 neighbours on the distribution interface to
	// their MAC (nil: not read; MACs are then not cross-checked).
	Neighbors map[netip.Addr]net.HardwareAddr
	// Hold: a new Active still waits for the nodes' answers.
	Hold bool
	// Weights of the previous decision (load weighting hysteresis).
	Weights map[string]int
}

// Status is the distribution part of /status.
type Status struct {
	Mode     string         `json:"mode"`
	Active   bool           `json:"active"`           // programming the mapping as the Active director
	Hold     bool           `json:"hold"`             // new Active waiting for the nodes' answers
	NodeRule bool           `json:"nodeRule"`         // this node accepts forwarded traffic
	Digest   string         `json:"digest,omitempty"` // of the mapping
	Slots    int            `json:"slots,omitempty"`
	Nodes    []Share        `json:"nodes,omitempty"`
	Counts   map[string]int `json:"counts,omitempty"` // eligible and left-out nodes
	// The executor's last transaction.
	Applied   time.Time `json:"applied,omitzero"`
	ApplyTime string    `json:"applyTime,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// Share is a node's row: whether it gets traffic, why not, its share.
type Share struct {
	distrib.Share
	MAC string `json:"mac,omitempty"`
}

// Desired returns the state the kernel must hold, the status, and the
// weights to pass to the next decision.
func Desired(in Input) (forward.State, Status, map[string]int) {
	var st forward.State
	var status Status
	p := in.Plan
	if p == nil || p.Distribution == nil {
		return st, status, nil
	}
	dist := p.Distribution
	status.Mode = dist.Mode
	if dist.Scans && dist.Mode == plan.DistributionL2 {
		st.Node = &forward.Node{VIPs: dist.VIPs, Ports: ports(dist.Ports), ProxyPort: uint16(dist.ProxyPort)}
		status.NodeRule = true
	}
	if !in.Active || p.VRRP == nil || len(dist.Nodes) == 0 {
		return st, status, nil
	}
	obs := observe(in)
	cfg := distrib.Config{Mode: dist.Mode, Slots: dist.Slots, DirectorsScan: dist.DirectorsScan,
		LoadWeighting: dist.LoadWeighting, Self: p.Node}
	dec := distrib.Decide(cfg, obs, in.Weights)
	weights := map[string]int{}
	for _, s := range dec.Shares {
		if s.Eligible {
			weights[s.Name] = s.Weight
		}
	}
	dir := &forward.Director{
		L2: dist.Mode == plan.DistributionL2, VIPInterface: dist.VIPInterface, OutInterface: dist.Interface,
		VIPs: dist.VIPs, Ports: ports(dist.Ports), ProxyPort: uint16(dist.ProxyPort), Seed: dist.Seed,
		Slots: make([]forward.Target, dist.Slots), Hold: in.Hold, Self: selfAddr(p),
	}
	byName := map[string]plan.DistributionNode{}
	for _, n := range dist.Nodes {
		byName[n.Name] = n
	}
	macs := map[string]net.HardwareAddr{}
	status.Active, status.Hold, status.Digest, status.Slots = true, in.Hold, dec.Table.Digest(), dist.Slots
	status.Counts = map[string]int{}
	for _, s := range dec.Shares {
		macs[s.Name] = s.MAC
		sh := Share{Share: s}
		if s.MAC != nil {
			sh.MAC = s.MAC.String()
		}
		status.Nodes = append(status.Nodes, sh)
		if s.Eligible {
			status.Counts["eligible"]++
		} else {
			status.Counts[s.Reason]++
		}
	}
	for s := range dir.Slots {
		name := dec.Table.Name(s)
		if name == "" || name == p.Node {
			continue
		}
		dir.Slots[s] = forward.Target{MAC: macs[name], Addr: byName[name].Address}
	}
	st.Director = dir
	return st, status, weights
}

// observe turns the management table into the decision's observations,
// one per node the plan lets take a share.
func observe(in Input) []distrib.Observation {
	rows := map[string]engine.Node{}
	for _, r := range in.Table.Nodes {
		rows[r.Name] = r
	}
	var obs []distrib.Observation
	for _, n := range in.Plan.Distribution.Nodes {
		r := rows[n.Name]
		o := distrib.Observation{
			Name: n.Name, Director: n.Director,
			Up:      in.Table.Active && r.Status == engine.StatusUp && r.Health == "available",
			Leaving: r.Health == "leaving", Reported: r.Reported, Serving: r.Serving, Load: r.Load,
		}
		if m, err := net.ParseMAC(r.MAC); err == nil {
			o.MAC = m
		}
		if m, ok := in.Neighbors[n.Address]; ok {
			o.NeighborMAC = m
		}
		obs = append(obs, o)
	}
	return obs
}

// AllHeard reports whether every node the plan lists has answered the
// Active (up or leaving): the hold can end.
func AllHeard(p *plan.Plan, table mgmt.Status) bool {
	if p == nil || p.Distribution == nil {
		return true
	}
	return distrib.AllHeard(observe(Input{Plan: p, Table: table}), p.Node)
}

// selfAddr is this node's address on the distribution segment.
func selfAddr(p *plan.Plan) netip.Addr {
	for _, n := range p.Distribution.Nodes {
		if n.Name == p.Node {
			return n.Address
		}
	}
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

// Left lists the nodes left out and why ("name:reason ..."), for logs.
func (s Status) Left() string {
	var out []string
	for _, n := range s.Nodes {
		if !n.Eligible {
			out = append(out, n.Name+":"+n.Reason)
		}
	}
	return strings.Join(out, " ")
}
