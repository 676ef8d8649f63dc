package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// The plan as election policy (Config.Policy). Without authentication any
// host on the segment can send adverts in a listed peer's name; the policy
// bounds what such adverts can do:
//
//   - priority 255 counts only from the peer the plan makes the owner
//     (otherwise dropped, "not-owner");
//   - any other priority that is not the planned one is counted; a higher
//     one is treated as the planned one, so a forgery cannot make the
//     Active yield to a "higher" peer; a lower one is believed (a
//     preempting Backup ignores it and waits for its down timer, which the
//     real Active's adverts keep resetting);
//   - a Backup times the Active out on the planned interval (clamped into
//     the allowed set), never on the advertised one: a forged 40.95 s
//     interval cannot silence the group, a forged 10 ms one cannot make
//     the Backup take over early;
//   - a peer that sent priority 0 and then advertised again within two
//     of its intervals has its priority-0 adverts ignored for leaveHold (extended while they keep
//     coming), so forged "I leave" adverts in the Active's name cause at
//     most one takeover-and-return per attack instead of a flap per advert.
//
// Roll-outs: after a Reconfigure that changes a peer's planned priority or
// interval, the previous value stays allowed for 2 × PolicyGrace; a raise of
// our own priority and a lengthening of our own interval wait PolicyGrace
// before they are used. A roll-out whose plans reach every director within
// PolicyGrace of each other therefore never disagrees with anyone's plan.

// peerState is one listed peer: its policy, what it advertised, counters.
type peerState struct {
	policy PeerPolicy
	// prev is the previously planned policy, allowed until prevUntil.
	prev      PeerPolicy
	prevUntil time.Time
	// leftAt is when it last sent priority 0 (zero: not recently).
	leftAt time.Time
	stats  PeerStats
}

// disagree counts a disagreement and reports it as an action of this step.
func (r *Router) disagree(ps *peerState, d Disagreement, format string, args ...any) {
	ps.stats.Disagreements[d]++
	r.notes = append(r.notes, Disagreed{Peer: ps.stats.Addr, Reason: d, Err: fmt.Errorf("vrrp: advert from %v disagrees with the plan: "+format, append([]any{ps.stats.Addr}, args...)...)})
}

// leaveHold is how long priority-0 adverts of a peer that contradicted its
// last one are ignored: at least a minute, at least ten of its intervals.
func leaveHold(interval time.Duration) time.Duration {
	return max(time.Minute, 10*interval)
}

// hasPolicy reports whether the plan's policy is in force.
func (r *Router) hasPolicy() bool { return len(r.cfg.Policy) > 0 }

// plannedInterval is the interval the plan gives p.
func (r *Router) plannedInterval(p PeerPolicy) time.Duration {
	if p.Interval != 0 {
		return p.Interval
	}
	return r.planned.AdvertInterval
}

// admitPriority returns the priority to run the election on for an
// advert of priority prio from ps, or drop=true for 255 from a non-owner.
func (r *Router) admitPriority(now time.Time, ps *peerState, prio uint8) (uint8, bool) {
	planned := ps.policy.Priority
	if planned == 0 || prio == planned || prio == 0 {
		return prio, false
	}
	if now.Before(ps.prevUntil) && ps.prev.Priority == prio {
		return prio, false // the previous plan's value, during a roll-out
	}
	if prio == 255 {
		r.disagree(ps, DisagreeOwner, "priority 255, but the plan makes it no owner (priority %d)", planned)
		return 0, true
	}
	r.disagree(ps, DisagreePriority, "priority %d, planned %d", prio, planned)
	// Lower than planned is believed: it can only make us keep or take
	// the Active role, and a preempting Backup still waits for its down
	// timer, which the real Active's own adverts keep resetting. Higher
	// than planned is not: that is what a forgery would claim.
	return min(prio, planned), false
}

// admitInterval returns the interval to time ps out on: the advertised one
// clamped into the planned values (the previous one too during a roll-out).
func (r *Router) admitInterval(now time.Time, ps *peerState, advertised time.Duration) time.Duration {
	lo := r.plannedInterval(ps.policy)
	hi := lo
	if now.Before(ps.prevUntil) {
		lo, hi = min(lo, ps.prev.Interval), max(hi, ps.prev.Interval)
	}
	if advertised != lo && advertised != hi {
		r.disagree(ps, DisagreeInterval, "interval %v, planned %v", advertised, r.plannedInterval(ps.policy))
	}
	return min(max(advertised, lo), hi)
}

// checkLeave applies the priority-0 hold-down. It returns true when the
// advert must be dropped ("leave-held").
func (r *Router) checkLeave(now time.Time, ps *peerState, prio uint8) bool {
	hold := leaveHold(r.plannedInterval(ps.policy))
	if prio == 0 {
		if now.Before(ps.stats.LeaveHeldUntil) {
			ps.stats.LeaveHeldUntil = now.Add(hold)
			return true
		}
		ps.leftAt = now
		return false
	}
	if !ps.leftAt.IsZero() {
		// It said it left, yet it advertises again within two of its
		// intervals: one of the two was not the peer. (A peer that really
		// left and came back starts as Backup and sends nothing for at
		// least three intervals; only an owner comes back at once.)
		if now.Sub(ps.leftAt) <= 2*r.plannedInterval(ps.policy) {
			r.disagree(ps, DisagreeLeave, "priority 0 %v ago, advertising again; its priority-0 adverts are ignored until %v", now.Sub(ps.leftAt), now.Add(hold).Format(time.RFC3339))
			ps.stats.LeaveHeldUntil = now.Add(hold)
		}
		ps.leftAt = time.Time{}
	}
	return false
}

// setPolicy installs the peers of cfg, keeping the state of peers that stay
// and remembering changed planned values for 2 × PolicyGrace.
func (r *Router) setPolicy(now time.Time, cfg Config, oldGroupInterval time.Duration) {
	old := r.peers
	r.peers = make(map[netip.Addr]*peerState, len(cfg.Peers))
	for _, a := range cfg.Peers {
		ps := old[a]
		if ps == nil {
			ps = &peerState{stats: PeerStats{Addr: a}}
		}
		var pol PeerPolicy
		for _, p := range cfg.Policy {
			if p.Addr == a {
				pol = p
			}
		}
		prevIv, newIv := ps.policy.Interval, pol.Interval
		if prevIv == 0 {
			prevIv = oldGroupInterval
		}
		if newIv == 0 {
			newIv = cfg.AdvertInterval
		}
		if old[a] != nil && (ps.policy.Priority != pol.Priority || prevIv != newIv) && cfg.PolicyGrace > 0 {
			ps.prev = PeerPolicy{Addr: a, Priority: ps.policy.Priority, Interval: prevIv}
			ps.prevUntil = now.Add(2 * cfg.PolicyGrace)
		}
		ps.policy = pol
		ps.stats.PlannedPriority = pol.Priority
		ps.stats.PlannedInterval = newIv
		r.peers[a] = ps
	}
}

// holdOwnChanges returns the configuration to use now for the planned cfg:
// a raised priority or a lengthened interval keeps the value in force until
// PolicyGrace has passed (see pendingDue).
func (r *Router) holdOwnChanges(now time.Time, cfg Config) Config {
	if len(cfg.Policy) == 0 || cfg.PolicyGrace <= 0 {
		r.pendingAt = time.Time{}
		return cfg
	}
	use := cfg
	if cfg.Priority > r.cfg.Priority {
		use.Priority = r.cfg.Priority
	}
	if cfg.AdvertInterval > r.cfg.AdvertInterval {
		use.AdvertInterval = r.cfg.AdvertInterval
	}
	switch {
	case use.Priority == cfg.Priority && use.AdvertInterval == cfg.AdvertInterval:
		r.pendingAt = time.Time{}
	case r.pendingAt.IsZero() || r.planned.Priority != cfg.Priority || r.planned.AdvertInterval != cfg.AdvertInterval:
		r.pendingAt = now.Add(cfg.PolicyGrace)
	}
	return use
}

// applyPending switches to the planned priority and interval once their
// wait is over. It reports whether anything changed.
func (r *Router) applyPending(now time.Time) bool {
	if r.pendingAt.IsZero() || now.Before(r.pendingAt) {
		return false
	}
	r.pendingAt = time.Time{}
	cfg := r.cfg
	cfg.Priority, cfg.AdvertInterval = r.planned.Priority, r.planned.AdvertInterval
	r.install(cfg)
	if r.state == StateActive {
		r.activeAdverInterval = cfg.AdvertInterval
	}
	return true
}

// checkPolicy validates cfg.Policy against the peers.
func checkPolicy(cfg Config, bad func(string, ...any)) {
	seen := map[netip.Addr]bool{}
	for _, p := range cfg.Policy {
		a := p.Addr.Unmap().WithZone("")
		found := false
		for _, q := range cfg.Peers {
			found = found || q == a
		}
		switch {
		case !found:
			bad("policy for %v, which is not a peer", p.Addr)
		case seen[a]:
			bad("policy for %v given twice", a)
		}
		seen[a] = true
		if iv := p.Interval; iv != 0 && (iv < 10*time.Millisecond || iv > MaxInterval*10*time.Millisecond || iv%(10*time.Millisecond) != 0) {
			bad("policy for %v: interval %v is not whole centiseconds in 10ms..40.95s", a, iv)
		}
	}
	if cfg.PolicyGrace < 0 {
		bad("policy grace %v is negative", cfg.PolicyGrace)
	}
}
