package plandiff

import (
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Why a group's Active is who it is after the change (RFC 9568 §6.4).
type moveKind int

const (
	// stays: the Active before is the Active after.
	stays moveKind = iota
	// preempts: a higher-priority router takes over from the Active,
	// because it preempts (the group's preempt, the owner's 255, or an
	// external peer, which is assumed to preempt as keepalived does).
	preempts
	// leaves: the Active before no longer runs the group; the best of the
	// rest takes over after its Skew_Time once the Active hands over.
	leaves
	// restarts: the Active's router is replaced (its source or interface
	// changed); it hands over and rejoins as Backup.
	restarts
	// starts: a new virtual router (group added, or VRID / family /
	// segment changed): every router starts as Backup and the best one
	// times out first.
	starts
	// joins: a new virtual router on a node that is Active for its other
	// groups: it starts as Active there at once (runtime/node: a member
	// started alone joins the sync group's state), as Backup elsewhere.
	joins
	// ends: the group is gone.
	ends
)

// outcome is who holds one group's VIPs in steady state before and after
// the change, assuming the best router is Active before (a plan cannot see
// which router won when preemption is off).
type outcome struct {
	group         string
	before, after string // "" for none
	kind          moveKind
	// priorities of the Active before (after the change) and of the new Active.
	beforePrio, afterPrio int
	// takeover is how long the new Active waits once the change reaches
	// it: Skew_Time after a handover, Active_Down_Interval (+ preempt
	// delay) when it preempts or starts.
	takeover time.Duration
	// blocked names a better router that does not preempt (preempt off).
	blocked string
	// grace is the rollout grace the new Active waits first: it preempts
	// because its own priority was raised, which the plan as election
	// policy holds back that long after the plan lands.
	grace time.Duration
}

func (o outcome) moves() bool { return o.before != o.after }

// elect works out the outcome of group g; replaced says the group is a new
// virtual router in after although it has the same name; joining names
// the node Active for the cluster's other groups after the change ("" when
// none), which a new virtual router joins as Active.
func elect(b, a *clusterView, g string, replaced bool, joining string) outcome {
	o := outcome{group: g}
	var bc, ac []candidate
	if b != nil && b.groups[g] != nil {
		bc = b.candidates(g)
	}
	if a != nil && a.groups[g] != nil {
		ac = a.candidates(g)
	}
	if len(bc) > 0 {
		o.before, o.beforePrio = bc[0].name, bc[0].priority
	}
	if len(ac) == 0 {
		o.kind = ends
		return o
	}
	gv := a.groups[g]
	interval := gv.AdvertInterval.D()
	best := ac[0]
	if (len(bc) == 0 || replaced) && joining != "" && a.priorityOf(g, joining) > 0 {
		o.kind, o.after, o.afterPrio = joins, joining, a.priorityOf(g, joining)
		return o
	}
	if len(bc) == 0 || replaced {
		o.kind, o.after, o.afterPrio = starts, best.name, best.priority
		o.takeover = vrrp.ActiveDownInterval(uint8(best.priority), interval)
		return o
	}
	active := o.before
	prio := a.priorityOf(g, active)
	if prio == 0 {
		o.kind, o.after, o.afterPrio = leaves, best.name, best.priority
		o.takeover = vrrp.SkewTime(uint8(best.priority), interval)
		return o
	}
	o.beforePrio = prio
	for _, c := range ac {
		if c.priority <= prio {
			break
		}
		if gv.Preempt || c.priority == 255 || c.external {
			o.kind, o.after, o.afterPrio = preempts, c.name, c.priority
			o.takeover = vrrp.ActiveDownInterval(uint8(c.priority), interval)
			if !c.external {
				o.takeover += gv.PreemptDelay.D()
				if was := b.priorityOf(g, c.name); was > 0 && was < c.priority {
					o.grace = a.grace
				}
			}
			return o
		}
		if o.blocked == "" {
			o.blocked = c.name
		}
	}
	if restarted(b, a, g, active) {
		o.kind = restarts
		// It hands over to the best of the rest, and takes back only when
		// it preempts.
		next := bestExcept(ac, active)
		if next.name != "" && !gv.Preempt && prio != 255 {
			o.after, o.afterPrio = next.name, next.priority
			o.takeover = vrrp.SkewTime(uint8(next.priority), interval)
			return o
		}
		o.after, o.afterPrio = active, prio
		o.takeover = vrrp.ActiveDownInterval(uint8(prio), interval)
		return o
	}
	o.kind, o.after, o.afterPrio = stays, active, prio
	return o
}

func bestExcept(cs []candidate, name string) candidate {
	for _, c := range cs {
		if c.name != name {
			return c
		}
	}
	return candidate{}
}

// restarted reports whether node's router for g is replaced by the agent:
// a changed interface or source address is a new socket and a new router.
func restarted(b, a *clusterView, g, node string) bool {
	bn, an := b.nodes[node], a.nodes[node]
	if bn == nil || an == nil {
		return false
	}
	bg, ok1 := bn.groups[g]
	ag, ok2 := an.groups[g]
	return ok1 && ok2 && (bg.Interface != ag.Interface || bg.Source != ag.Source)
}

// replacedGroup reports whether group g is a new virtual router in a: the
// agent cannot reconfigure a VRID, family or segment in place.
func replacedGroup(b, a *clusterView, g string) bool {
	bg, ag := b.groups[g], a.groups[g]
	if bg == nil || ag == nil {
		return false
	}
	return bg.VRID != ag.VRID || bg.Family != ag.Family || bg.segment != ag.segment
}
