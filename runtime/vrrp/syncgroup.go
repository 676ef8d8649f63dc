package vrrp

import (
	"fmt"
	"time"
)

// SyncGroup makes the virtual routers of one node move together, like
// keepalived's vrrp_sync_group: when one member becomes Active the others
// follow, and when an Active member falls back to Backup the others do too.
// Members in Initialize are left alone.
type SyncGroup struct {
	routers []*Router
	acts    []Action // a member's tick, reused
}

// MemberAction is an action of the member with index Member.
type MemberAction struct {
	Member int
	Action Action
}

// NewSyncGroup groups the routers; their indexes are the member numbers.
func NewSyncGroup(routers ...*Router) *SyncGroup {
	return &SyncGroup{routers: routers}
}

// Len is the number of members.
func (g *SyncGroup) Len() int { return len(g.routers) }

// Router returns member i.
func (g *SyncGroup) Router(i int) *Router { return g.routers[i] }

// Step feeds ev to member (or to every member when member is -1) and then
// brings the other members along with any transition to or from Active.
func (g *SyncGroup) Step(now time.Time, member int, ev Event) []MemberAction {
	return g.AppendStep(nil, now, member, ev)
}

// AppendStep is Step appending the actions to out and returning the
// extended slice. A caller that carries the actions out before its next
// step can pass the same slice again, truncated: then a tick of an Active
// allocates nothing.
func (g *SyncGroup) AppendStep(out []MemberAction, now time.Time, member int, ev Event) []MemberAction {
	if _, ok := ev.(Tick); ok {
		g.holdBack(now)
	}
	defer g.holdBack(now)
	start := len(out)
	if member < 0 {
		for i := range g.routers {
			out = g.appendMemberStep(out, now, i, ev)
		}
	} else if member < len(g.routers) {
		out = g.appendMemberStep(out, now, member, ev)
	} else {
		return append(out, MemberAction{Member: member, Action: Rejected{Err: fmt.Errorf("vrrp: sync group has no member %d", member)}})
	}

	// A member started alone (a group added to a running node) joins the
	// group where it is: while the others are Active it becomes Active at
	// once instead of waiting out Active_Down_Interval as a Backup, so the
	// node stays Active for all of its groups or for none.
	if _, ok := ev.(Start); ok && member >= 0 {
		out = g.joinActive(now, member, out)
	}

	// The last member transition of this step decides where the group goes.
	leader, target := -1, StateInitialize
	for _, ma := range out[start:] {
		t, ok := ma.Action.(Transition)
		if !ok {
			continue
		}
		switch {
		case t.To == StateActive:
			leader, target = ma.Member, StateActive
		case t.From == StateActive && t.To == StateBackup:
			leader, target = ma.Member, StateBackup
		}
	}
	if leader < 0 {
		return g.spreadReannounce(now, out, start)
	}
	for i, r := range g.routers {
		if i == leader || r.state == StateInitialize || r.state == target {
			continue
		}
		reason := fmt.Sprintf("sync group: %s became %v", g.memberName(leader), target)
		if target == StateActive {
			out = appendMember(out, i, r.becomeActive(now, nil, reason))
		} else {
			out = appendMember(out, i, r.becomeBackup(now, nil, r.activeAdverInterval, reason))
		}
	}
	return out
}

// spreadReannounce: when one member learned that another node acted as
// Active (or that this node was paused), that node took every group of
// the sync group, so every Active member announces again (each within its
// own holdoff).
func (g *SyncGroup) spreadReannounce(now time.Time, out []MemberAction, start int) []MemberAction {
	why, found := AnnounceTakeover, false
	for _, ma := range out[start:] {
		if a, ok := ma.Action.(Announce); ok && ma.Member < len(g.routers) {
			if a.Reason == AnnounceLowerPriority || a.Reason == AnnouncePause {
				why, found = a.Reason, true
			}
		}
	}
	if !found {
		return out
	}
	announced := make([]bool, len(g.routers))
	for _, ma := range out[start:] {
		if _, ok := ma.Action.(Announce); ok && ma.Member < len(announced) {
			announced[ma.Member] = true
		}
	}
	for i, r := range g.routers {
		if !announced[i] {
			out = appendMember(out, i, r.reannounce(now, why))
		}
	}
	return out
}

// holdBack keeps a Backup member from taking over while another member
// of the group still hears the node's Active: the Active is alive, so a
// member whose own Active is silent (or left with priority 0) is a group
// that the Active does not run at the moment — added here first, or
// already removed there, in the middle of a roll-out of plans. Taking it
// over would drag every member Active beside the live Active, and they
// would fall back at its next advert, again and again. The member waits
// while another member heard its Active within the held member's own
// Active_Down_Interval; when that evidence runs out or turns into a
// priority 0, the takeover happens at once. A crashed Active stops every
// member's adverts at once, so it holds nothing back by more than the
// adverts in flight. It runs before every Tick and after every Step.
func (g *SyncGroup) holdBack(now time.Time) {
	for _, r := range g.routers {
		due := r.downTimer
		if !r.heldDue.IsZero() {
			due = r.heldDue
		}
		if r.state != StateBackup || r.preemptingPriority != 0 || due.IsZero() || now.Before(due) {
			continue
		}
		adi := ActiveDownInterval(r.cfg.Priority, r.activeAdverInterval)
		var until time.Time
		for _, o := range g.routers {
			if o == r || o.state != StateBackup || o.leaving || o.preemptingPriority != 0 || o.heard.IsZero() {
				continue
			}
			if t := o.heard.Add(adi); now.Before(t) && t.After(until) {
				until = t
			}
		}
		switch {
		case !until.IsZero():
			r.heldDue, r.downTimer = due, until
		case !r.heldDue.IsZero():
			r.heldDue, r.downTimer = time.Time{}, due // released: due now
		}
	}
}

// memberName names a member for a transition's reason: by its group's name
// when the router has one.
func (g *SyncGroup) memberName(i int) string {
	cfg := g.routers[i].cfg
	if cfg.Name != "" {
		return fmt.Sprintf("group %s (VRID %d)", cfg.Name, cfg.VRID)
	}
	return fmt.Sprintf("member %d (VRID %d)", i, cfg.VRID)
}

// joinActive makes a freshly started member Active when another member is.
func (g *SyncGroup) joinActive(now time.Time, member int, out []MemberAction) []MemberAction {
	r := g.routers[member]
	if r.state != StateBackup {
		return out
	}
	for i, o := range g.routers {
		if i != member && o.state == StateActive {
			reason := fmt.Sprintf("sync group: joined while %s is Active", g.memberName(i))
			return appendMember(out, member, r.becomeActive(now, nil, reason))
		}
	}
	return out
}

// appendMemberStep steps member i; a tick goes through the group's
// reused buffer.
func (g *SyncGroup) appendMemberStep(out []MemberAction, now time.Time, i int, ev Event) []MemberAction {
	r := g.routers[i]
	if _, ok := ev.(Tick); !ok {
		return appendMember(out, i, r.Step(now, ev))
	}
	g.acts = r.appendTick(g.acts[:0], now)
	out = appendMember(out, i, g.acts)
	clear(g.acts)
	return out
}

func appendMember(out []MemberAction, member int, acts []Action) []MemberAction {
	for _, a := range acts {
		out = append(out, MemberAction{Member: member, Action: a})
	}
	return out
}

// Deadline is the earliest deadline of the members; zero when none runs.
func (g *SyncGroup) Deadline() time.Time {
	var d time.Time
	for _, r := range g.routers {
		if rd := r.Deadline(); !rd.IsZero() && (d.IsZero() || rd.Before(d)) {
			d = rd
		}
	}
	return d
}

// State is Active when any member is Active (after a Step all started
// members agree), else Backup when any is Backup, else Initialize.
func (g *SyncGroup) State() State {
	s := StateInitialize
	for _, r := range g.routers {
		if r.state > s {
			s = r.state
		}
	}
	return s
}
