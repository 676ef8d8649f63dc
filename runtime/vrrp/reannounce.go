package vrrp

import (
	"fmt"
	"slices"
	"time"
)

// AnnounceReason says why an Announce was asked for. Its String is a
// stable metric label.
type AnnounceReason uint8

const (
	// AnnounceTakeover: the VIPs are new on this router (it became Active,
	// or a Reconfigure added them). The zero value.
	AnnounceTakeover AnnounceReason = iota
	// AnnounceLowerPriority: while Active, an advert with a lower priority
	// (0 included, or an equal one from a lower address) arrived: another
	// router acts, or acted, as Active and may have announced the VIPs from
	// its own MAC address (a healed partition; a yielding Active's last
	// advert). Its answer alone would fix bridges only if a virtual MAC
	// were in use; clients' neighbour caches need the announcement.
	AnnounceLowerPriority
	// AnnouncePause: this router was Active but sent no advert for three
	// Active_Adver_Intervals, and at least PauseFloor (its process was
	// stopped or starved), long enough for a Backup to have taken over
	// and announced meanwhile.
	AnnouncePause
	// AnnounceRefresh: the periodic refresh while Active (Reannounce.Refresh).
	AnnounceRefresh
	// NumAnnounceReasons is the number of reasons, for arrays indexed by
	// AnnounceReason.
	NumAnnounceReasons
)

var announceReasonNames = [NumAnnounceReasons]string{
	AnnounceTakeover:      "takeover",
	AnnounceLowerPriority: "lower-priority",
	AnnouncePause:         "pause",
	AnnounceRefresh:       "refresh",
}

func (a AnnounceReason) String() string {
	if a < NumAnnounceReasons {
		return announceReasonNames[a]
	}
	return fmt.Sprintf("AnnounceReason(%d)", uint8(a))
}

// AnnounceReasons lists every reason, for metric setup.
func AnnounceReasons() []AnnounceReason {
	out := make([]AnnounceReason, 0, NumAnnounceReasons)
	for a := AnnounceTakeover; a < NumAnnounceReasons; a++ {
		out = append(out, a)
	}
	return out
}

// DefaultReannounceHoldoff is Reannounce.Holdoff when left zero.
const DefaultReannounceHoldoff = time.Second

// Reannounce configures how an Active tells the link again that it holds
// the VIPs when another router may have announced them (AnnounceReason
// says when). The zero value turns it on with DefaultReannounceHoldoff and
// no periodic refresh.
//
// Bound: whatever arrives, a router asks for at most one re-announcement
// (an Announce with reason lower-priority or pause) at once per Holdoff,
// and one more when the holdoff ends for the causes that came inside it
// (they coalesce): at most two per Holdoff, plus one per Refresh. Forged
// adverts cannot turn the Active into an amplifier. The held-off one does
// not start a holdoff of its own: causes of one split often come in twos
// (the other router's queued adverts, then its yield advert), and the next
// split's cause must not wait for the second. The answering
// advert to a lower-priority advert is limited separately (Router.answer:
// at most four per advert interval).
type Reannounce struct {
	// Disabled turns re-announcement off, and with it the advert a
	// yielding Active sends (see the README: "yield advert").
	Disabled bool
	// Holdoff is the least time between two re-announcements (takeovers
	// and refreshes do not count); zero means DefaultReannounceHoldoff.
	Holdoff time.Duration
	// Refresh, when positive, re-announces every Refresh while Active
	// (keepalived's garp_master_refresh).
	Refresh time.Duration
}

// normalizeReannounce checks and fills in the defaults of cfg.
func normalizeReannounce(cfg *Reannounce, bad func(string, ...any)) {
	switch {
	case cfg.Holdoff < 0:
		bad("re-announce holdoff %v is negative", cfg.Holdoff)
	case cfg.Holdoff == 0:
		cfg.Holdoff = DefaultReannounceHoldoff
	}
	if cfg.Refresh < 0 {
		bad("re-announce refresh %v is negative", cfg.Refresh)
	}
}

// reannounceState is the part of a Router that decides re-announcements.
// It only matters while Active; leaving Active clears what is pending.
type reannounceState struct {
	// pauseAfter is when silence since our last advert means we were
	// paused: three intervals after it was sent (no Backup can have given
	// up on us sooner, since its Skew_Time is positive), and at least
	// PauseFloor.
	pauseAfter time.Time
	// lastAt is when the last immediate re-announcement was asked for
	// (zero: none in this Active period), the start of the holdoff.
	lastAt time.Time
	// dueAt is when a held-off cause is served; zero when none is waiting.
	dueAt     time.Time
	dueReason AnnounceReason
	// refreshAt is the next periodic refresh; zero without refresh.
	refreshAt time.Time
}

// PauseFloor is the shortest silence of an Active counted as a pause
// (AnnouncePause). At short intervals a busy host stalls for three
// intervals often; a Backup that took over during such a short stall is
// still heard: its adverts wait in the socket and bring a lower-priority
// re-announcement when the Active runs again. The pause is the backstop
// for a long stop (SIGSTOP, a frozen VM).
const PauseFloor = time.Second

// advertSent notes an advert sent while Active at now, for pause detection.
func (r *Router) advertSent(now time.Time) {
	r.re.pauseAfter = now.Add(max(3*r.cfg.AdvertInterval, PauseFloor))
}

// startReannounce arms the re-announce state on becoming Active at now.
func (r *Router) startReannounce(now time.Time) {
	r.re = reannounceState{}
	r.advertSent(now)
	if r.cfg.Reannounce.Refresh > 0 && !r.cfg.Reannounce.Disabled {
		r.re.refreshAt = now.Add(r.cfg.Reannounce.Refresh)
	}
}

// stopReannounce forgets everything pending on leaving Active.
func (r *Router) stopReannounce() { r.re = reannounceState{} }

// paused reports whether an Active router has been silent long enough at
// now that a Backup may have taken over.
func (r *Router) paused(now time.Time) bool {
	return r.state == StateActive && !r.re.pauseAfter.IsZero() && !now.Before(r.re.pauseAfter)
}

// reannounce asks for a re-announcement at now, or holds it off until the
// holdoff since the last one ends. It returns the Announce, or nothing.
func (r *Router) reannounce(now time.Time, why AnnounceReason) []Action {
	if r.state != StateActive || r.cfg.Reannounce.Disabled {
		return nil
	}
	if !r.re.lastAt.IsZero() {
		if end := r.re.lastAt.Add(r.cfg.Reannounce.Holdoff); now.Before(end) {
			if r.re.dueAt.IsZero() {
				r.re.dueAt, r.re.dueReason = end, why
			}
			r.stats.ReannouncementsHeldOff++
			return nil
		}
	}
	r.re.lastAt = now
	r.re.dueAt = time.Time{}
	return []Action{r.announce(why)}
}

// announce returns an Announce of every VIP for why and counts it.
func (r *Router) announce(why AnnounceReason) Announce {
	r.stats.Announcements[why]++
	return Announce{VIPs: slices.Clone(r.cfg.VIPs), Reason: why}
}

// reannounceTimers serves a held-off cause and the refresh when due.
func (r *Router) reannounceTimers(now time.Time) []Action {
	var acts []Action
	if !r.re.dueAt.IsZero() && !now.Before(r.re.dueAt) {
		r.re.dueAt = time.Time{}
		acts = append(acts, r.announce(r.re.dueReason))
	}
	if !r.re.refreshAt.IsZero() && !now.Before(r.re.refreshAt) {
		r.re.refreshAt = now.Add(r.cfg.Reannounce.Refresh)
		if len(acts) == 0 { // one burst serves both
			acts = append(acts, r.announce(AnnounceRefresh))
		}
	}
	return acts
}

// reannounceDeadline is the earliest re-announce timer; zero when none.
func (r *Router) reannounceDeadline() time.Time {
	return earliest(r.re.dueAt, r.re.refreshAt)
}

// reconfigureReannounce applies a changed Reannounce config while Active.
func (r *Router) reconfigureReannounce(now time.Time, old Reannounce) {
	n := r.cfg.Reannounce
	if n.Disabled {
		r.re.dueAt, r.re.refreshAt = time.Time{}, time.Time{}
		return
	}
	if n.Refresh != old.Refresh || old.Disabled {
		r.re.refreshAt = time.Time{}
		if n.Refresh > 0 {
			r.re.refreshAt = now.Add(n.Refresh)
		}
	}
}

// earliest returns the earliest non-zero time; zero when all are zero.
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}
