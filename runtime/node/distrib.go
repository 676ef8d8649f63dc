package node

import (
	"net"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/distributor"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/plan"
)

// distPart is traffic distribution (docs/distribution.md): what the
// kernel must hold, recomputed (runtime/distributor.Desired) whenever an
// input changes and emitted as a Forwarding effect when it differs from
// the last one. While Active in l2 mode it also asks for the neighbour
// table (ReadNeighbors) to cross-check the MACs the nodes announce.
type distPart struct {
	active    bool
	holdUntil time.Time // a new Active holds the traffic until then
	weights   map[string]int
	neigh     map[netip.Addr]net.HardwareAddr
	last      *forward.State // last emitted; nil before the first
	status    distributor.Status
}

// distribute recomputes the distribution at now; askNeighbors requests a
// fresh neighbour table too (not when answering one, or it would loop).
func (n *Node) distribute(now time.Time, askNeighbors bool) {
	d := &n.dist
	p := n.plan
	active := n.syncActive() && !n.links.Fault() && n.mgmt != nil && p != nil && p.Distribution != nil
	if active != d.active {
		d.active = active
		d.holdUntil, d.weights, d.neigh = time.Time{}, nil, nil
		if active {
			d.holdUntil = distrib.HoldUntil(now, p.Management.DiscoveryInterval.D())
		}
	}
	var table mgmt.Status
	if n.mgmt != nil {
		table = n.mgmt.status(n)
	}
	hold := !d.holdUntil.IsZero() && now.Before(d.holdUntil) && !distributor.AllHeard(p, table)
	if !hold {
		d.holdUntil = time.Time{}
	}
	st, status, weights := distributor.Desired(distributor.Input{
		Plan: p, Active: active, Table: table, Neighbors: d.neigh, Hold: hold, Weights: d.weights,
	})
	d.weights = weights
	status.Applied, status.ApplyTime, status.Error = d.status.Applied, d.status.ApplyTime, d.status.Error
	d.status = status
	if active && askNeighbors && p.Distribution.Mode == plan.DistributionL2 &&
		!slices.ContainsFunc(n.out, func(e Effect) bool { _, ok := e.(ReadNeighbors); return ok }) {
		n.emit(ReadNeighbors{Interface: p.Distribution.Interface}) // once per step
	}
	if d.last != nil && reflect.DeepEqual(*d.last, st) {
		return
	}
	if d.last == nil && st.Director == nil && st.Node == nil {
		d.last = &st // nothing to program, nothing programmed yet
		return
	}
	d.last = &st
	n.emit(Forwarding{State: st})
	n.log.Info("traffic distribution", "active", status.Active, "hold", status.Hold, "digest", status.Digest,
		"eligible", status.Counts["eligible"], "out", status.Left())
}

func (d *distPart) deadline() time.Time {
	if d.active {
		return d.holdUntil
	}
	return time.Time{}
}

// distNeighbors takes the neighbour table the executor read.
func (n *Node) distNeighbors(now time.Time, ev Neighbors) {
	if ev.Err != nil {
		n.log.Warn("reading the neighbour table; announced MACs are not cross-checked", "interface", ev.Interface, "err", ev.Err)
		return
	}
	if !n.dist.active || reflect.DeepEqual(n.dist.neigh, ev.MACs) {
		return
	}
	n.dist.neigh = ev.MACs
	n.distribute(now, false)
}

// distApplied takes the executor's report of a Forwarding effect.
func (n *Node) distApplied(ev ForwardingApplied) {
	s := &n.dist.status
	if ev.Err != nil {
		s.Error = ev.Err.Error()
		return
	}
	s.Applied, s.ApplyTime, s.Error = ev.At, ev.Took.String(), ""
}

// distStop removes everything at stop.
func (n *Node) distStop() {
	if n.dist.last != nil && !reflect.DeepEqual(*n.dist.last, forward.State{}) {
		n.dist.last = &forward.State{}
		n.emit(Forwarding{})
	}
	n.dist.active = false
}

// DistributionStatus is the distribution for /status and the metrics
// (false when the plan has none).
func (n *Node) DistributionStatus() (distributor.Status, bool) {
	if n.plan == nil || n.plan.Distribution == nil {
		return distributor.Status{}, false
	}
	s := n.dist.status
	s.Nodes = append([]distributor.Share(nil), s.Nodes...)
	return s, true
}
