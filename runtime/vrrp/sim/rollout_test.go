package sim

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// rolloutSeeds is how many random clusters each roll-out runs on.
const rolloutSeeds = 200

// withPolicy gives every member the plan's view of its peers (their
// priorities) and the roll-out grace.
func withPolicy(c cluster, grace time.Duration) cluster {
	out := c
	out.cfgs = make([][]vrrp.Config, len(c.cfgs))
	for i, node := range c.cfgs {
		for m, cfg := range node {
			cfg.Policy = nil
			for j := range c.cfgs {
				if j != i {
					cfg.Policy = append(cfg.Policy, vrrp.PeerPolicy{Addr: c.cfgs[j][m].Source, Priority: c.prios[j]})
				}
			}
			cfg.Priority = c.prios[i]
			cfg.AdvertInterval = c.intervals[m]
			cfg.PolicyGrace = grace
			out.cfgs[i] = append(out.cfgs[i], cfg)
		}
	}
	return out
}

// rollOut delivers next's configs to every node at a random time within
// spread, in random order, and returns when it started.
func rollOut(s *Segment, next cluster, spread time.Duration) time.Time {
	start := s.Now
	at := make([]time.Duration, len(next.cfgs))
	for i := range at {
		at[i] = time.Duration(s.Rand().Int64N(int64(spread)))
	}
	order := s.Rand().Perm(len(at))
	slices.SortFunc(order, func(a, b int) int { return int(at[a] - at[b]) })
	for _, i := range order {
		s.Run(start.Add(at[i]))
		for m, cfg := range next.cfgs[i] {
			s.Reconfigure(i, m, cfg)
		}
	}
	return start
}

// simpleCluster: distinct priorities below 255, so "who should be Active"
// has one answer.
func simpleCluster(seed uint64) (cluster, bool) {
	c := randomCluster(seed)
	seen := map[uint8]bool{}
	for _, p := range c.prios {
		if p == 255 || p >= 250 || seen[p] {
			return c, false
		}
		seen[p] = true
	}
	c.preempt = true
	for _, node := range c.cfgs {
		for m := range node {
			node[m].Preempt = true
		}
	}
	return c, true
}

type change struct {
	name string
	// apply returns the new cluster and how many transitions it should cause.
	apply func(c cluster) (cluster, int)
}

var changes = []change{
	{"a backup raised above the Active", func(c cluster) (cluster, int) {
		n := c
		n.prios = slices.Clone(c.prios)
		best := slices.Max(c.prios)
		for i, p := range c.prios {
			if p != best {
				n.prios[i] = best + 1
				return n, 2
			}
		}
		return n, 0
	}},
	{"the Active lowered below every backup", func(c cluster) (cluster, int) {
		n := c
		n.prios = slices.Clone(c.prios)
		lowest := slices.Min(c.prios)
		if lowest < 2 {
			return n, 0
		}
		n.prios[slices.Index(c.prios, slices.Max(c.prios))] = lowest - 1
		return n, 2
	}},
	{"intervals ten times longer", func(c cluster) (cluster, int) {
		n := c
		n.intervals = slices.Clone(c.intervals)
		for m, iv := range n.intervals {
			n.intervals[m] = min(10*iv, 4*time.Second)
		}
		return n, 0
	}},
	{"intervals ten times shorter", func(c cluster) (cluster, int) {
		n := c
		n.intervals = slices.Clone(c.intervals)
		for m, iv := range n.intervals {
			n.intervals[m] = max(iv/10, 10*time.Millisecond)
		}
		return n, 0
	}},
}

// runRollout runs one change on one cluster with the given grace and
// returns the transitions it caused, the expected number, and the Active
// at the end (-1 for not exactly one).
func runRollout(t *testing.T, c cluster, ch change, grace, spread time.Duration) (got, want, active int, next cluster) {
	t.Helper()
	c = withPolicy(c, grace)
	next, want = ch.apply(c)
	next = withPolicy(next, grace)
	want *= len(c.intervals) // every member of the sync group moves
	s := c.segment(t)
	s.Loss = 0
	// Jitter stays below the shorter of the old and new intervals, and
	// below half the smallest difference of two nodes' Skew_Time: beyond
	// that, several Backups preempting a lowered Active race each other in
	// plain RFC 9568, policy or not.
	s.DelayMax = min(c.delayMax, slices.Min(next.intervals)/2, skewGap(c, next)/2)
	startAll(s, c)
	s.RunFor(c.settle())
	start := rollOut(s, next, spread)
	s.RunFor(2*grace + next.settle() + c.settle())
	got = transitionsAfter(s, start)
	active = -1
	if a := s.Actives()[0]; len(a) == 1 {
		active = a[0]
	}
	return got, want, active, next
}

// TestRolloutWithoutFlap: with the plan as policy, a roll-out that changes
// a priority or an interval and reaches every director within PolicyGrace
// (in any order, at any times) causes exactly the intended transitions —
// none for an interval, one handover for a priority — and ends with the
// best node Active.
func TestRolloutWithoutFlap(t *testing.T) {
	const grace = 5 * time.Second
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			for seed := uint64(1); seed <= rolloutSeeds; seed++ {
				c, ok := simpleCluster(seed)
				if !ok {
					continue
				}
				got, want, active, next := runRollout(t, c, ch, grace, grace)
				if got != want {
					t.Fatalf("%v: %d transitions, want %d", c, got, want)
				}
				if active < 0 || next.prios[active] != slices.Max(next.prios) {
					t.Fatalf("%v: Active n%d at the end, priorities %v", c, active, next.prios)
				}
			}
		})
	}
}

// TestRolloutControl: the same roll-outs without a grace (changes applied
// at once, previous values not allowed) do flap or split in some clusters,
// so TestRolloutWithoutFlap measures the grace and not luck.
func TestRolloutControl(t *testing.T) {
	for _, ch := range changes[:3] {
		bad := 0
		for seed := uint64(1); seed <= rolloutSeeds; seed++ {
			c, ok := simpleCluster(seed)
			if !ok {
				continue
			}
			if got, want, _, _ := runRollout(t, c, ch, 0, 5*time.Second); got != want {
				bad++
			}
		}
		if bad == 0 {
			t.Errorf("%s: no cluster misbehaved without the grace", ch.name)
		}
	}
}

func keyring(mode auth.Mode, active uint8, ids ...uint8) *auth.Config {
	c := &auth.Config{Mode: mode, ActiveKey: active}
	for _, id := range ids {
		c.Keys = append(c.Keys, auth.Key{ID: id, Secret: bytes.Repeat([]byte{id}, 32)})
	}
	return c
}

// TestAuthRolloutAndRotation walks the documented procedures on random
// clusters: receive-only, permissive, enforce, then a key rotation (add
// key 2, make it active, remove key 1), then key 2's file changed in place,
// each step delivered to the nodes in random order within a second.
// Nothing moves; at the end every advert is verified and none arrives
// unsigned.
func TestAuthRolloutAndRotation(t *testing.T) {
	steps := []struct {
		name string
		auth *auth.Config
	}{
		{"receive-only", keyring(auth.ModeReceiveOnly, 1, 1)},
		{"permissive", keyring(auth.ModePermissive, 1, 1)},
		{"enforce", keyring(auth.ModeEnforce, 1, 1)},
		{"key 2 added", keyring(auth.ModeEnforce, 1, 1, 2)},
		{"key 2 active", keyring(auth.ModeEnforce, 2, 1, 2)},
		{"key 1 removed", keyring(auth.ModeEnforce, 2, 2)},
		// The file of key 2 replaced in place: same id, new secret.
		{"key 2 changed in place", &auth.Config{Mode: auth.ModeEnforce, ActiveKey: 2, Keys: []auth.Key{{ID: 2, Secret: bytes.Repeat([]byte{0x5a}, 48)}}}},
	}
	for seed := uint64(1); seed <= rolloutSeeds; seed++ {
		c := withPolicy(randomCluster(seed), 5*time.Second)
		s := c.segment(t)
		s.Loss = 0
		startAll(s, c)
		s.RunFor(c.settle())
		active := checkOneActive(t, s, c, "before")
		before := len(s.Transitions)
		for _, st := range steps {
			next := c
			next.cfgs = make([][]vrrp.Config, len(c.cfgs))
			for i, node := range c.cfgs {
				for _, cfg := range node {
					cfg.Auth = st.auth
					next.cfgs[i] = append(next.cfgs[i], cfg)
				}
			}
			rollOut(s, next, time.Second)
			s.RunFor(c.settle() + 10*time.Second) // past the grace of a changed secret (2 × 5 s)
			if len(s.Transitions) != before {
				t.Fatalf("%v: step %s: transitions %v", c, st.name, s.Transitions[before:])
			}
		}
		if now := checkOneActive(t, s, c, "after"); now != active {
			t.Fatalf("%v: Active moved from n%d to n%d", c, active, now)
		}
		// Everything a Backup hears now is signed with key 2.
		for i, n := range s.Nodes {
			for m := 0; m < n.Group.Len(); m++ {
				before := n.Group.Router(m).Stats()
				s.RunFor(c.maxInterval() * 3)
				after := n.Group.Router(m).Stats()
				if i != active && (after.Auth.Verified == before.Auth.Verified || after.Auth.Unsigned != before.Auth.Unsigned) {
					t.Fatalf("%v: n%d member %d: verified %d -> %d, unsigned %d -> %d", c, i, m, before.Auth.Verified, after.Auth.Verified, before.Auth.Unsigned, after.Auth.Unsigned)
				}
				for _, p := range after.Peers {
					if p.Accepted > 0 && p.LastKeyID != 2 && p.Addr == s.Config(active, m).Source {
						t.Fatalf("%v: n%d hears the Active with key %d", c, i, p.LastKeyID)
					}
				}
			}
		}
	}
}

// skewGap is the smallest difference between the Skew_Times of any two
// priorities of a or b, over the intervals of both.
func skewGap(a, b cluster) time.Duration {
	prios := append(slices.Clone(a.prios), b.prios...)
	gap := time.Duration(1 << 62)
	for _, iv := range append(slices.Clone(a.intervals), b.intervals...) {
		for i, p := range prios {
			for _, q := range prios[i+1:] {
				if p != q {
					d := vrrp.SkewTime(p, iv) - vrrp.SkewTime(q, iv)
					gap = min(gap, max(d, -d))
				}
			}
		}
	}
	return gap
}
