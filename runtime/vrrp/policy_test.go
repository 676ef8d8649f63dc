package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// policyPair: A (priority 200) and B (priority 100), 100 ms, each with the
// plan's view of the other.
func policyPair(t *testing.T, grace time.Duration) (a, b *Router) {
	t.Helper()
	vips := []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}
	iv := 100 * time.Millisecond
	a = mustRouter(t, Config{VRID: 7, Priority: 200, Source: authA, AdvertInterval: iv, Preempt: true, VIPs: vips,
		Peers: []netip.Addr{authB}, Policy: []PeerPolicy{{Addr: authB, Priority: 100}}, PolicyGrace: grace})
	b = mustRouter(t, Config{VRID: 7, Priority: 100, Source: authB, AdvertInterval: iv, Preempt: true, VIPs: vips,
		Peers: []netip.Addr{authA}, Policy: []PeerPolicy{{Addr: authA, Priority: 200}}, PolicyGrace: grace})
	return a, b
}

// forged is an advert as a third host would send it in src's name.
func forged(t *testing.T, src netip.Addr, prio uint8, intervalCS uint16) Packet {
	t.Helper()
	adv := &Advert{Version: 3, Type: 1, VRID: 7, Priority: prio, MaxAdvertInterval: intervalCS, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	data, err := adv.Marshal(src, GroupIPv4, ChecksumRFC9568)
	if err != nil {
		t.Fatal(err)
	}
	return Packet{Src: src, Dst: GroupIPv4, TTL: 255, Data: data}
}

func transitions(acts []Action) int {
	n := 0
	for _, a := range acts {
		if _, ok := a.(Transition); ok {
			n++
		}
	}
	return n
}

// TestPolicyActive: forgeries in the Backup's name cannot make the Active
// yield; each is counted under its reason.
func TestPolicyActive(t *testing.T) {
	now := t0
	a, _ := policyPair(t, 0)
	a.Step(now, Start{})
	now = now.Add(time.Second)
	a.Step(now, Tick{})
	if a.State() != StateActive {
		t.Fatal("A not Active")
	}
	for i, tc := range []struct {
		prio  uint8
		want  DropReason
		dis   Disagreement
		count uint64
	}{
		{255, DropNotOwner, DisagreeOwner, 1},
		{254, DropNone, DisagreePriority, 1},
		{201, DropNone, DisagreePriority, 2},
	} {
		now = now.Add(30 * time.Millisecond)
		acts := a.Step(now, forged(t, authB, tc.prio, 10))
		if got := dropOf(acts); got != tc.want || transitions(acts) != 0 || a.State() != StateActive {
			t.Fatalf("priority %d: drop %v, actions %v", tc.prio, got, acts)
		}
		if d, ok := acts[0].(Disagreed); !ok || d.Reason != tc.dis || d.Peer != authB || d.Err == nil {
			t.Fatalf("priority %d: first action %#v, want Disagreed %v", tc.prio, acts[0], tc.dis)
		}
		if got := a.Stats().Peers[0].Disagreements[tc.dis]; got != tc.count {
			t.Fatalf("step %d: %v disagreements %d", i, tc.dis, got)
		}
	}
	// Without a policy (the RFC), the same forgery wins.
	plain := mustRouter(t, Config{VRID: 7, Priority: 200, Source: authA, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}, Peers: []netip.Addr{authB}})
	plain.Step(t0, Start{})
	plain.Step(t0.Add(time.Second), Tick{})
	if plain.Step(t0.Add(time.Second), forged(t, authB, 254, 10)); plain.State() != StateBackup {
		t.Fatal("control: without a policy the forgery should have won")
	}
}

// TestPolicyBackupInterval: a Backup times the Active out on the planned
// interval whatever the advert says.
func TestPolicyBackupInterval(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   uint16
		dis  uint64
	}{{"planned", 10, 0}, {"forged 40.95s", 4095, 1}, {"forged 10ms", 1, 1}} {
		_, b := policyPair(t, 0)
		b.Step(t0, Start{})
		at := t0.Add(50 * time.Millisecond)
		b.Step(at, forged(t, authA, 200, tc.cs))
		if want := at.Add(ActiveDownInterval(100, 100*time.Millisecond)); !b.Deadline().Equal(want) {
			t.Errorf("%s: down timer %v after the advert, want %v", tc.name, b.Deadline().Sub(at), want.Sub(at))
		}
		if got := b.Stats().Peers[0].Disagreements[DisagreeInterval]; got != tc.dis {
			t.Errorf("%s: %d interval disagreements", tc.name, got)
		}
	}
}

// TestPolicyBackupPriority: a forged low priority in the Active's name
// between the real Active's adverts does not make a preempting Backup take
// over: the real adverts keep resetting its down timer. A forged high one
// counts as the planned priority.
func TestPolicyBackupPriority(t *testing.T) {
	_, b := policyPair(t, 0)
	b.Step(t0, Start{})
	now := t0
	for range 20 {
		now = now.Add(100 * time.Millisecond)
		b.Step(now, forged(t, authA, 200, 10))
		b.Step(now.Add(time.Millisecond), forged(t, authA, 1, 10))
		b.Step(now.Add(2*time.Millisecond), forged(t, authA, 254, 10))
		if acts := b.Step(now.Add(99*time.Millisecond), Tick{}); transitions(acts) != 0 {
			t.Fatalf("Backup moved: %v", acts)
		}
	}
	if b.State() != StateBackup || b.Stats().Peers[0].Disagreements[DisagreePriority] != 40 {
		t.Fatalf("state %v stats %+v", b.State(), b.Stats().Peers[0])
	}
	// When only the low priority is heard (the Active lowered itself, or
	// the real one is gone), the Backup preempts as the RFC says.
	for range 5 {
		now = now.Add(100 * time.Millisecond)
		b.Step(now, forged(t, authA, 1, 10))
		b.Step(now, Tick{})
	}
	if b.State() != StateActive {
		t.Fatal("a Backup that hears only a lower priority did not preempt")
	}
}

// TestPolicyLeave: forged priority-0 adverts in the Active's name, between
// the real Active's adverts, move the Backup at most once per attack.
func TestPolicyLeave(t *testing.T) {
	_, b := policyPair(t, 0)
	b.Step(t0, Start{})
	now := t0
	var moves int
	for i := range 100 { // 10 s: the real Active every 100 ms, a forged 0 after each
		now = now.Add(100 * time.Millisecond)
		moves += transitions(b.Step(now, Tick{}))
		moves += transitions(b.Step(now, forged(t, authA, 200, 10)))
		moves += transitions(b.Step(now.Add(time.Millisecond), forged(t, authA, 0, 10)))
		if i == 0 && b.Deadline().Sub(now.Add(time.Millisecond)) != SkewTime(100, 100*time.Millisecond) {
			t.Fatalf("the first priority 0 should shorten the wait to Skew_Time, deadline in %v", b.Deadline().Sub(now))
		}
		moves += transitions(b.Step(now.Add(90*time.Millisecond), Tick{}))
	}
	s := b.Stats()
	if moves > 2 || s.Peers[0].Disagreements[DisagreeLeave] != 1 || s.Drops[DropLeaveHeld] != 99 {
		t.Fatalf("%d transitions; peer %+v; leave-held drops %d", moves, s.Peers[0], s.Drops[DropLeaveHeld])
	}
	// A real leave after the attack stopped for leaveHold is honoured at once.
	now = now.Add(leaveHold(100*time.Millisecond) + time.Second)
	b.Step(now, forged(t, authA, 200, 10))
	b.Step(now.Add(10*time.Millisecond), forged(t, authA, 0, 10))
	if got := b.Deadline().Sub(now.Add(10 * time.Millisecond)); got != SkewTime(100, 100*time.Millisecond) {
		t.Fatalf("a leave after the hold: takeover in %v", got)
	}
}

// TestPolicyOwnRaiseWaits: a raised own priority and a lengthened own
// interval wait PolicyGrace; lowering applies at once; a peer's previous
// planned values stay allowed for 2 × PolicyGrace.
func TestPolicyOwnRaiseWaits(t *testing.T) {
	grace := 10 * time.Second
	a, b := policyPair(t, grace)
	b.Step(t0, Start{})
	cfg := b.Config()
	cfg.Priority, cfg.AdvertInterval = 250, time.Second
	if acts := b.Step(t0, Reconfigure{Config: cfg}); len(acts) != 0 {
		t.Fatalf("reconfigure: %v", acts)
	}
	s := b.Stats()
	if s.Priority != 100 || s.PendingPriority != 250 || s.PendingInterval != time.Second || !s.PendingAt.Equal(t0.Add(grace)) {
		t.Fatalf("pending: %+v", s)
	}
	b.Step(t0.Add(grace), Tick{})
	if s := b.Stats(); s.Priority != 250 || b.Config().AdvertInterval != time.Second || !s.PendingAt.IsZero() {
		t.Fatalf("after the grace: %+v", s)
	}
	cfg.Priority = 50
	b.Step(t0.Add(grace), Reconfigure{Config: cfg})
	if b.Stats().Priority != 50 {
		t.Fatal("a lowered priority waited")
	}

	// A's plan raises B to 250: B's old 100 stays allowed for 2 × grace.
	a.Step(t0, Start{})
	acfg := a.Config()
	acfg.Policy = []PeerPolicy{{Addr: authB, Priority: 250}}
	a.Step(t0, Reconfigure{Config: acfg})
	a.Step(t0.Add(time.Second), forged(t, authB, 100, 10))
	a.Step(t0.Add(2*grace+time.Second), forged(t, authB, 100, 10))
	if got := a.Stats().Peers[0].Disagreements[DisagreePriority]; got != 1 {
		t.Fatalf("disagreements %d, want 1 (only after 2 × grace)", got)
	}
}

// TestPolicyLeaveRestart: a peer that really left and comes back after
// restarting (silent for three intervals as Backup) is not held: its next
// priority 0 is honoured at once.
func TestPolicyLeaveRestart(t *testing.T) {
	_, b := policyPair(t, 0)
	b.Step(t0, Start{})
	now := t0.Add(100 * time.Millisecond)
	b.Step(now, forged(t, authA, 200, 10))
	b.Step(now.Add(10*time.Millisecond), forged(t, authA, 0, 10)) // a leaves
	now = now.Add(10*time.Millisecond + 3*100*time.Millisecond + SkewTime(200, 100*time.Millisecond))
	b.Step(now, forged(t, authA, 200, 10)) // back after its own Active_Down_Interval
	if got := b.Stats().Peers[0].Disagreements[DisagreeLeave]; got != 0 {
		t.Fatalf("a restart counted as a contradiction (%d)", got)
	}
	b.Step(now.Add(50*time.Millisecond), forged(t, authA, 0, 10))
	if got := b.Deadline().Sub(now.Add(50 * time.Millisecond)); got != SkewTime(100, 100*time.Millisecond) {
		t.Fatalf("the next leave: takeover in %v, want Skew_Time", got)
	}
}
