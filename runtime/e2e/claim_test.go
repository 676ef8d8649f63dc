package e2e

import (
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// TestClaimedVIP: a host on the segment claims the VIP with gratuitous
// ARPs from its own MAC every 300 ms for 3 s, as arpspoof does. Measured
// where the client feels it: the client's neighbour entry for the VIP
// (sampled every 10 ms) and its pings to the VIP (every 10 ms). The Active
// answers every claim within tens of milliseconds, so the entry points at
// the attacker only briefly after each claim (the control: it does point
// there, so the attack reaches the client), raises the vip-claim alarm
// naming the attacker's MAC, and nothing moves: no transition on either
// director, no alarm on the Backup, which cannot tell claims apart.
func TestClaimedVIP(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, b := startPair(t, lab, cl)
	macA, macX := lab.MAC("a"), lab.MAC("x")
	trA, trB := transitions(t, a), transitions(t, b)
	prober := StartProber(t, lab, "c", vip4, 10*time.Millisecond, 0)
	neigh := SampleNeighbour(t, lab, "c", vip4)
	Eventually(t, 3*time.Second, "the client's entry for the VIP at a", func() (bool, string) {
		s := neigh.Between(time.Now().Add(-50*time.Millisecond), time.Now())
		return len(s) > 0 && s[len(s)-1].MAC == macA, ""
	})

	const claims, every = 10, 300 * time.Millisecond
	f := lab.Forger("x", "")
	start := time.Now()
	for range claims {
		if err := f.SendFrame(netlab.GratuitousARP(f.MAC(), vip4)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every)
	}
	end := time.Now()

	samples := neigh.Between(start, end)
	poisoned, longest := Stretches(samples, macX)
	lost := 0
	for _, p := range prober.Pings(start, end.Add(-100*time.Millisecond)) {
		if bad(p) {
			lost++
		}
	}
	t.Logf("%d claims over %v: the client's entry pointed at the attacker in %d of %d samples, at most %v at a time; %d pings lost",
		claims, end.Sub(start).Round(time.Millisecond), poisoned, len(samples), longest, lost)
	if poisoned == 0 {
		t.Errorf("the client's entry never pointed at the attacker: the attack did not reach the client, the test measures nothing")
	}
	if longest > 150*time.Millisecond {
		t.Errorf("the client's entry pointed at the attacker for %v at a stretch; the Active answers a claim within tens of milliseconds", longest)
	}
	if limit := len(samples) / 5; poisoned > limit {
		t.Errorf("the client's entry pointed at the attacker in %d of %d samples (limit %d)", poisoned, len(samples), limit)
	}
	if last := samples[len(samples)-1].MAC; last != macA {
		t.Errorf("after the attack the client's entry points at %q, want a's %s", last, macA)
	}

	al := waitAlarm(t, a, "vip-claim", vip4, macX, 4*time.Second)
	if al.Where != "inside-v4" || al.Count < claims/2 {
		t.Errorf("a's vip-claim alarm: %+v", al)
	}
	waitMetric(t, a, `mwgc_agent_reannouncements_total{group="inside-v4",reason="vip-claim"}`, claims/2, 2*time.Second)
	waitMetric(t, a, `mwgc_agent_impersonations_total{kind="vip-claim"}`, claims/2, 2*time.Second)
	if got := transitions(t, a); got != trA {
		t.Errorf("a made %d transitions under the claims", got-trA)
	}
	if got := transitions(t, b); got != trB {
		t.Errorf("b made %d transitions under the claims", got-trB)
	}
	s, err := b.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range s.Alarms {
		if al.Kind == "vip-claim" {
			t.Errorf("the Backup raised a vip-claim alarm: %+v", al)
		}
	}
}
