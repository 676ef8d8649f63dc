package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Clients believe the last announcement they heard. These properties check
// who made it: after any split heals, it must be the Active.

// lastAnnouncement is the last Announce of member m on the segment.
func lastAnnouncement(s *Segment, m int) (AnnounceRecord, bool) {
	for i := len(s.Announcements) - 1; i >= 0; i-- {
		if a := s.Announcements[i]; a.Member == m {
			return a, true
		}
	}
	return AnnounceRecord{}, false
}

// checkLastAnnouncer fails unless, for every group, the last announcement
// came from active and, when since is set, was made after it and no later
// than by.
func checkLastAnnouncer(t *testing.T, s *Segment, c cluster, active int, since, by time.Time, when string) {
	t.Helper()
	for m := range c.intervals {
		a, ok := lastAnnouncement(s, m)
		switch {
		case !ok:
			t.Fatalf("%v: %s: nobody ever announced group %d", c, when, m)
		case a.Node != active:
			t.Fatalf("%v: %s: group %d last announced by n%d (%v at %v), but n%d is Active", c, when, m, a.Node, a.Reason, a.At.Sub(Epoch), active)
		case !since.IsZero() && (a.At.Before(since) || a.At.After(by)):
			t.Fatalf("%v: %s: group %d last announced by the Active at %v, want within %v..%v", c, when, m, a.At.Sub(Epoch), since.Sub(Epoch), by.Sub(Epoch))
		}
	}
}

// holdoff is the re-announce holdoff of the simulated routers (the default).
const holdoff = vrrp.DefaultReannounceHoldoff

// After a partition heals (loss-free), the Active that stays announces the
// VIPs again after the heal, within one interval, two delays and at most
// one holdoff: the other partition's Active announced them meanwhile.
func TestPartitionHealLastAnnouncerIsActive(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		checkOneActive(t, s, c, "before the partition")
		part := make([]int, len(s.Nodes))
		for !slices.Contains(part, 0) || !slices.Contains(part, 1) {
			for i := range part {
				part[i] = s.Rand().IntN(2)
			}
		}
		s.Partition(part...)
		s.RunFor(c.settle())
		checkOneActive(t, s, c, "partitioned")
		heal := s.Now
		s.Heal()
		s.RunFor(c.settle() + holdoff)
		active := checkOneActive(t, s, c, "healed")
		checkLastAnnouncer(t, s, c, active, heal, heal.Add(slices.Min(c.intervals)+2*c.delayMax+holdoff), "after the heal")
	})
}

// An Active stopped (SIGSTOP) for a while and resumed: whoever is Active
// afterwards made the last announcement, whether or not a Backup took over
// meanwhile, and whichever of its queued packets and its late timer the
// resumed node handles first.
func TestPauseResumeLastAnnouncerIsActive(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle())
		paused := checkOneActive(t, s, c, "before the pause")
		backups := othersThan(s, paused)
		adi := c.downInterval(c.best(backups))
		s.Pause(paused)
		pause := time.Duration(s.Rand().Int64N(int64(4 * adi)))
		s.RunFor(pause)
		resume := s.Now
		s.Resume(paused)
		s.RunFor(c.settle() + holdoff)
		active := checkOneActive(t, s, c, "after the resume")
		var since time.Time
		if _, took := firstActiveAfter(s, resume.Add(-pause), paused); took && active == paused {
			since = resume // a Backup announced during the pause
		}
		checkLastAnnouncer(t, s, c, active, since, resume.Add(c.maxInterval()+2*c.delayMax+holdoff), "after the resume")
	})
}

// In a loss-free steady state nobody announces anything.
func TestSteadyStateAnnouncesNothing(t *testing.T) {
	eachSeed(t, func(t *testing.T, c cluster) {
		s := c.segment(t)
		startAll(s, c)
		s.RunFor(c.settle() + holdoff)
		checkOneActive(t, s, c, "after convergence")
		before := len(s.Announcements)
		s.RunFor(c.settle() + holdoff)
		if n := len(s.Announcements) - before; n != 0 {
			t.Fatalf("%v: %d announcements in a steady state: %v", c, n, s.Announcements[before:])
		}
	})
}
