// Package plandiff compares two compiled repositories and says, per
// cluster and node, what changes and what it does on the wire: who is
// Active before and after, which VIPs move, what backups adopt, what sends
// nothing new — the `terraform plan` of `mwgc plan`.
package plandiff

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/mwgc/mwgc/compiler"
)

// Diff compares before with after. A nil snapshot stands for an empty
// repository (the first commit of a cluster repository).
func Diff(before, after *compiler.Snapshot) *Report {
	b, a := newRepoView(before), newRepoView(after)
	r := &Report{Segments: diffSegments(b, a), Clusters: []Cluster{}}
	unchanged := 0
	for _, name := range unionKeys(b.clusters, a.clusters) {
		c := diffCluster(b.clusters[name], a.clusters[name])
		if c == nil {
			unchanged += len(a.clusters[name].nodes)
			continue
		}
		r.Clusters = append(r.Clusters, *c)
	}
	r.summarize()
	r.Summary.PlansUnchanged += unchanged
	return r
}

// differ collects the changes of one cluster.
type differ struct {
	b, a    *clusterView // never nil: an absent side is an empty view
	out     map[string]outcome
	changes []Change
	order   []string
}

func emptyView(name string) *clusterView {
	return &clusterView{name: name, nodes: map[string]*nodeView{}, groups: map[string]*groupView{}}
}

func diffCluster(bc, ac *clusterView) *Cluster {
	c := &Cluster{Op: OpUpdate, Changes: []Change{}, Plans: []PlanChange{}}
	switch {
	case bc == nil:
		c.Op, bc = OpAdd, emptyView(ac.name)
	case ac == nil:
		c.Op, ac = OpRemove, emptyView(bc.name)
		ac.mode = bc.mode
	}
	c.Name, c.Mode = ac.name, ac.mode
	d := &differ{b: bc, a: ac, out: map[string]outcome{}}
	// Groups on both sides first: a group added (or replaced) on a node
	// that is Active for its other groups joins it as Active.
	var later []string
	joining := ""
	for _, g := range unionKeys(bc.groups, ac.groups) {
		if bc.groups[g] == nil || replacedGroup(bc, ac, g) {
			later = append(later, g)
			continue
		}
		d.out[g] = elect(bc, ac, g, false, "")
		if o := d.out[g]; joining == "" && o.after != "" {
			joining = o.after
		}
	}
	for _, g := range later {
		d.out[g] = elect(bc, ac, g, replacedGroup(bc, ac, g), joining)
	}
	c.Plans, c.Unchanged = d.plans()
	switch c.Op {
	case OpAdd:
		d.clusterAdded()
	case OpRemove:
		d.clusterRemoved()
	default:
		d.mode()
		d.nodes()
		d.groups()
		d.announce()
		d.management()
		d.distribution()
		d.otherSections()
	}
	if len(d.changes) == 0 && len(c.Plans) > 0 {
		// A safety net: never hide a plan change this package cannot name.
		d.add(Change{Op: OpUpdate, Subject: "plans", Detail: "change in a way mwgc plan does not describe",
			Effect: "compare the plan files; the agent applies only what differs", Wire: true})
	}
	if len(d.changes) == 0 {
		return nil
	}
	c.Changes, c.Order = d.changes, d.order
	c.Active = d.active()
	return c
}

func (d *differ) add(c Change) { d.changes = append(d.changes, c) }

// adviseGrace asks for every director's plan within the rollout grace.
func (d *differ) adviseGrace(why string) {
	d.advise(fmt.Sprintf("Load the new plans on every director within the rollout grace (%s) of each other: %s", dur(d.a.grace), why))
}

func (d *differ) advise(s string) {
	if !slices.Contains(d.order, s) {
		d.order = append(d.order, s)
	}
}

// plans lists the plan files that change, with their digests.
func (d *differ) plans() ([]PlanChange, int) {
	out := []PlanChange{}
	unchanged := 0
	for _, name := range unionKeys(d.b.nodes, d.a.nodes) {
		bn, an := d.b.nodes[name], d.a.nodes[name]
		switch {
		case bn == nil:
			out = append(out, PlanChange{Node: name, Op: OpAdd, After: an.digest})
		case an == nil:
			out = append(out, PlanChange{Node: name, Op: OpRemove, Before: bn.digest})
		case bn.digest != an.digest:
			out = append(out, PlanChange{Node: name, Op: OpUpdate, Before: bn.digest, After: an.digest})
		default:
			unchanged++
		}
	}
	return out, unchanged
}

// active sums the groups' outcomes up for the cluster: the node is Active
// for all its groups or none (a sync group).
func (d *differ) active() *Active {
	if len(d.out) == 0 {
		return nil
	}
	act := &Active{}
	var reasons []string
	for _, g := range sortedKeys(d.out) {
		o := d.out[g]
		if act.Before == "" {
			act.Before = o.before
		}
		if o.after != "" && act.After == "" {
			act.After = o.after
		}
		if o.after != "" && o.after != act.After {
			reasons = append(reasons, "groups disagree ("+g+": "+o.after+"): they move together as a sync group, so expect a takeover by the stronger one")
		}
		if r := d.reason(o); r != "" && !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
		if o.moves() && o.before != "" && o.after != "" && d.b.groups[g] != nil {
			for _, v := range d.a.groups[g].VIPs {
				if slices.ContainsFunc(d.b.groups[g].VIPs, func(p netip.Prefix) bool { return p.Addr() == v.Addr() }) {
					act.VIPs = append(act.VIPs, v.Addr().String())
				}
			}
		}
	}
	act.Moves = act.Before != act.After
	act.Assumed = act.Before != "" && d.anyNoPreempt()
	act.Reason = joinSentences(reasons)
	return act
}

func (d *differ) anyNoPreempt() bool {
	for _, g := range d.b.groups {
		if !g.Preempt {
			return true
		}
	}
	return false
}
