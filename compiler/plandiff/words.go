package plandiff

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// noWire is the effect of a change that sends nothing new and moves
// nothing.
const noWire = "no change on the wire"

func joinAddrs(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Addr().String()
	}
	return strings.Join(s, ", ")
}

func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func joinSentences(s []string) string { return strings.Join(s, "; ") }

// dur prints a duration to the millisecond, which is what a person can act
// on (Skew_Time has nanoseconds).
func dur(d time.Duration) string {
	if d >= 10*time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// vipNoun is "VIP" or "VIPs" before a list.
func vipNoun(vips []netip.Prefix) string {
	if len(vips) == 1 {
		return "VIP " + joinAddrs(vips)
	}
	return "VIPs " + joinAddrs(vips)
}

// announcement says what a new Active sends for its VIPs.
func (d *differ) announcement(family string) string {
	what := "gratuitous ARPs"
	if family == plan.FamilyIPv6 {
		what = "unsolicited neighbour advertisements"
	}
	a := d.a.announce
	if a == nil {
		return "announces it with " + what
	}
	s := fmt.Sprintf("announces it with %d %s", a.Count, what)
	if a.RepeatAfter > 0 {
		s += fmt.Sprintf(", again after %s", dur(a.RepeatAfter.D()))
	}
	return s
}

// reason says why a group's Active is who it is after the change.
func (d *differ) reason(o outcome) string {
	switch o.kind {
	case preempts:
		s := fmt.Sprintf("%s preempts (priority %d > %d", o.after, o.afterPrio, o.beforePrio)
		switch gv := d.a.groups[o.group]; {
		case d.isExternal(o.group, o.after):
			s += "; an external peer is assumed to preempt, as keepalived does by default"
		case !gv.Preempt && o.afterPrio == 255:
			s += "; the owner preempts although preempt is off"
		}
		return s + ")"
	case leaves:
		return fmt.Sprintf("%s no longer runs group %s; %s (priority %d) takes over", o.before, o.group, o.after, o.afterPrio)
	case restarts:
		if o.after == o.before {
			return fmt.Sprintf("%s's router for group %s is replaced: it hands over, rejoins as Backup and preempts back", o.before, o.group)
		}
		return fmt.Sprintf("%s's router for group %s is replaced: it hands over to %s and, preempt being off, stays Backup", o.before, o.group, o.after)
	case joins:
		if o.before != "" && o.before != o.after {
			return fmt.Sprintf("group %s is a new virtual router, which %s, Active for the others, runs as Active at once", o.group, o.after)
		}
	case starts:
		if o.before != "" {
			return fmt.Sprintf("group %s is a new virtual router: %s (priority %d) times out first", o.group, o.after, o.afterPrio)
		}
	case stays:
		if o.blocked != "" {
			return fmt.Sprintf("%s has a higher priority but does not take over: preempt is off", o.blocked)
		}
	}
	return ""
}

// takeoverIn says how long a takeover waits, and why that long.
func (d *differ) takeoverIn(o outcome) string {
	gv := d.a.groups[o.group]
	iv := dur(gv.AdvertInterval.D())
	switch o.kind {
	case leaves:
		return fmt.Sprintf("within %s (Skew_Time of priority %d at %s)", dur(o.takeover), o.afterPrio, iv)
	case preempts:
		s := fmt.Sprintf("within %s (Active_Down_Interval of priority %d at %s", dur(o.takeover), o.afterPrio, iv)
		if gv.PreemptDelay > 0 && !d.isExternal(o.group, o.after) {
			s += fmt.Sprintf(" + preempt delay %s", dur(gv.PreemptDelay.D()))
		}
		s += ")"
		if o.grace > 0 {
			s = fmt.Sprintf("after the rollout grace (%s) and then %s", dur(o.grace), s)
		}
		return s
	case restarts:
		if o.after == o.before {
			return fmt.Sprintf("back within %s (Active_Down_Interval of priority %d at %s)", dur(o.takeover), o.afterPrio, iv)
		}
		return fmt.Sprintf("within %s (Skew_Time of priority %d at %s)", dur(o.takeover), o.afterPrio, iv)
	}
	return fmt.Sprintf("after %s (Active_Down_Interval of priority %d at %s)", dur(o.takeover), o.afterPrio, iv)
}

func (d *differ) isExternal(g, name string) bool {
	gv := d.a.groups[g]
	if gv == nil {
		return false
	}
	_, ok := gv.external[name]
	return ok
}

// vipsMove is "VIPs 192.0.2.100 move from dir-a to dir-b within …", for
// the VIPs the group has on both sides (added and removed ones have lines
// of their own).
func (d *differ) vipsMove(o outcome) string {
	var kept []netip.Prefix
	if bg := d.b.groups[o.group]; bg != nil {
		for _, v := range d.a.groups[o.group].VIPs {
			if slices.ContainsFunc(bg.VIPs, func(p netip.Prefix) bool { return p.Addr() == v.Addr() }) {
				kept = append(kept, v)
			}
		}
	}
	switch len(kept) {
	case 0:
		return fmt.Sprintf("%s takes over from %s %s", o.after, o.before, d.takeoverIn(o))
	case 1:
		return fmt.Sprintf("%s moves from %s to %s %s", vipNoun(kept), o.before, o.after, d.takeoverIn(o))
	}
	return fmt.Sprintf("%s move from %s to %s %s", vipNoun(kept), o.before, o.after, d.takeoverIn(o))
}

// firstOutcome returns the outcome of the first group (by name) that
// satisfies ok.
func (d *differ) firstOutcome(ok func(outcome) bool) (outcome, bool) {
	for _, g := range sortedKeys(d.out) {
		if o := d.out[g]; ok(o) {
			return o, true
		}
	}
	return outcome{}, false
}

// activeAfter is the cluster's Active after the change, from the first
// group that has one.
func (d *differ) activeAfter() string {
	o, _ := d.firstOutcome(func(o outcome) bool { return o.after != "" })
	return o.after
}

// directorNames lists the directors of a side other than except.
func directorNames(cl *clusterView, except string) []string {
	var out []string
	for _, n := range cl.directors() {
		if n.name != except {
			out = append(out, n.name)
		}
	}
	return out
}
