package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustRouter(t testing.TB, cfg Config) *Router {
	t.Helper()
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// twoFamilies is a node's pair of groups: IPv4 VRID 1 at 1s and IPv6 VRID
// 2 at 2s, priority 100.
func twoFamilies(t testing.TB) *SyncGroup {
	v4 := mustRouter(t, Config{VRID: 1, Priority: 100, Source: netip.MustParseAddr("192.0.2.1"), AdvertInterval: time.Second, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")}})
	v6 := mustRouter(t, Config{VRID: 2, Priority: 100, Source: netip.MustParseAddr("fe80::1"), AdvertInterval: 2 * time.Second, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64")}, Peers: []netip.Addr{netip.MustParseAddr("fe80::2")}})
	return NewSyncGroup(v4, v6)
}

func renderMember(mas []MemberAction) []string {
	var out []string
	for _, ma := range mas {
		out = append(out, string(rune('0'+ma.Member))+": "+renderAction(ma.Action))
	}
	return out
}

func TestSyncGroupMovesTogether(t *testing.T) {
	g := twoFamilies(t)
	step := func(at time.Duration, member int, ev Event, want ...string) []MemberAction {
		t.Helper()
		got := g.Step(t0.Add(at), member, ev)
		if diff := cmp.Diff(want, renderMember(got)); diff != "" {
			t.Fatalf("at %v: actions (-want +got):\n%s", at, diff)
		}
		return got
	}
	step(0, -1, Start{}, "0: Initialize->Backup", "1: Initialize->Backup")
	if g.State() != StateBackup {
		t.Fatalf("group state %v", g.State())
	}
	if d := g.Deadline().Sub(t0); d != 3609375*time.Microsecond {
		t.Fatalf("group deadline %v, want the earlier member's 3.609375s", d)
	}
	// Member 0's down timer fires: member 1 follows although its own
	// (7.21875s) has not.
	got := step(3609375*time.Microsecond, -1, Tick{},
		"0: send 100", "0: add 192.0.2.100/24", "0: announce 192.0.2.100/24", "0: Backup->Active",
		"1: send 100", "1: add 2001:db8::100/64", "1: announce 2001:db8::100/64", "1: Backup->Active")
	if tr := got[7].Action.(Transition); !strings.Contains(tr.Reason, "sync group") {
		t.Errorf("forced transition reason %q does not name the sync group", tr.Reason)
	}
	if g.State() != StateActive || g.Router(1).State() != StateActive {
		t.Fatal("group not Active")
	}
	// The IPv6 peer with a higher priority takes member 1 back to Backup:
	// member 0 follows.
	a := &Advert{Version: 3, Type: 1, VRID: 2, Priority: 200, MaxAdvertInterval: 200, Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}
	data, err := a.Marshal(netip.MustParseAddr("fe80::2"), GroupIPv6, ChecksumIPv6)
	if err != nil {
		t.Fatal(err)
	}
	// Member 1 sends its yield advert; member 0, which heard no better
	// advert, goes quietly.
	step(4*time.Second, 1, Packet{Src: netip.MustParseAddr("fe80::2"), Dst: GroupIPv6, TTL: 255, Data: data},
		"1: send 100", "1: remove 2001:db8::100/64", "1: Active->Backup",
		"0: remove 192.0.2.100/24", "0: Active->Backup")
	if g.State() != StateBackup {
		t.Fatalf("group state %v", g.State())
	}
	// Member 0 keeps its own Active_Down_Interval (1s adverts).
	if d := g.Router(0).Deadline().Sub(t0); d != 4*time.Second+3609375*time.Microsecond {
		t.Errorf("member 0 deadline %v", d)
	}
	step(5*time.Second, -1, Shutdown{}, "0: Backup->Initialize", "1: Backup->Initialize")
	if g.State() != StateInitialize || !g.Deadline().IsZero() {
		t.Errorf("after shutdown: state %v deadline %v", g.State(), g.Deadline())
	}
	step(5*time.Second, 7, Tick{}, "7: rejected")
}

func TestSyncGroupShutdownWhileActive(t *testing.T) {
	g := twoFamilies(t)
	g.Step(t0, -1, Start{})
	g.Step(t0.Add(4*time.Second), -1, Tick{})
	got := renderMember(g.Step(t0.Add(5*time.Second), -1, Shutdown{}))
	want := []string{"0: send 0", "0: remove 192.0.2.100/24", "0: Active->Initialize", "1: send 0", "1: remove 2001:db8::100/64", "1: Active->Initialize"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestSyncGroupLeavesStoppedMembersAlone(t *testing.T) {
	g := twoFamilies(t)
	g.Step(t0, 0, Start{}) // member 1 not started
	got := renderMember(g.Step(t0.Add(4*time.Second), -1, Tick{}))
	want := []string{"0: send 100", "0: add 192.0.2.100/24", "0: announce 192.0.2.100/24", "0: Backup->Active"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if g.Router(1).State() != StateInitialize {
		t.Fatalf("member 1 is %v", g.Router(1).State())
	}
}

// A member started alone while another is Active (a group added to an
// Active node by a reload) joins as Active at once; while the others are
// Backup it starts as Backup like any router.
func TestSyncGroupMemberJoinsActive(t *testing.T) {
	g := twoFamilies(t)
	g.Step(t0, 0, Start{})
	got := renderMember(g.Step(t0.Add(time.Second), 1, Start{}))
	if diff := cmp.Diff([]string{"1: Initialize->Backup"}, got); diff != "" {
		t.Fatalf("start beside a Backup (-want +got):\n%s", diff)
	}
	g.Step(t0.Add(time.Second), -1, Shutdown{})
	g.Step(t0.Add(2*time.Second), 0, Start{})
	g.Step(t0.Add(6*time.Second), -1, Tick{}) // member 0 Active
	got = renderMember(g.Step(t0.Add(7*time.Second), 1, Start{}))
	want := []string{"1: Initialize->Backup", "1: send 100", "1: add 2001:db8::100/64", "1: announce 2001:db8::100/64", "1: Backup->Active"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("start beside an Active (-want +got):\n%s", diff)
	}
	if d := g.Router(1).Deadline().Sub(t0); d != 9*time.Second {
		t.Errorf("joined member's next advert at %v, want one interval (2s) after joining", d)
	}
}

// A member whose Active leaves (priority 0) or falls silent waits while
// another member still hears the node's Active: that Active lives and
// does not run the first group at the moment (a roll-out of plans), and
// taking the group over would drag the whole node Active beside it. The
// hold ends when the other member's evidence ends.
func TestSyncGroupHoldsBackWhileTheActiveLives(t *testing.T) {
	g := twoFamilies(t) // member 0: IPv4 at 1s; member 1: IPv6 at 2s
	g.Step(t0, -1, Start{})
	advert := func(at time.Duration, member int, prio uint8) []MemberAction {
		t.Helper()
		src, dst, form, vrid, iv := netip.MustParseAddr("192.0.2.2"), GroupIPv4, ChecksumPseudoHeader, uint8(1), uint16(100)
		addr := netip.MustParseAddr("192.0.2.100")
		if member == 1 {
			src, dst, form, vrid, iv, addr = netip.MustParseAddr("fe80::2"), GroupIPv6, ChecksumIPv6, 2, 200, netip.MustParseAddr("2001:db8::100")
		}
		a := &Advert{Version: 3, Type: 1, VRID: vrid, Priority: prio, MaxAdvertInterval: iv, Addresses: []netip.Addr{addr}}
		data, err := a.Marshal(src, dst, form)
		if err != nil {
			t.Fatal(err)
		}
		return g.Step(t0.Add(at), member, Packet{Src: src, Dst: dst, TTL: 255, Data: data})
	}
	advert(time.Second, 0, 200)
	advert(time.Second, 1, 200)
	// The peer stops running the IPv6 group (priority 0) but keeps the
	// IPv4 one: member 1 would take over after Skew_Time; it is held.
	advert(1100*time.Millisecond, 1, 0)
	for at := 2 * time.Second; at <= 6*time.Second; at += time.Second {
		advert(at, 0, 200)
		if got := renderMember(g.Step(t0.Add(at+time.Millisecond), -1, Tick{})); len(got) != 0 {
			t.Fatalf("at %v: %v while member 0 hears a live Active", at, got)
		}
	}
	if g.State() != StateBackup {
		t.Fatalf("group %v", g.State())
	}
	// Member 1 is held until one of its Active_Down_Intervals after
	// member 0's last advert; the peer dies, and member 0's own timer runs
	// out first: the node takes over then, as without the hold.
	d := g.Deadline().Sub(t0)
	if want := 6*time.Second + ActiveDownInterval(100, time.Second); d != want {
		t.Fatalf("next deadline %v, want member 0's %v", d, want)
	}
	got := renderMember(g.Step(t0.Add(d), -1, Tick{}))
	if len(got) == 0 || g.State() != StateActive {
		t.Fatalf("no takeover when the evidence ran out: %v", got)
	}
}

// AppendStep is Step appending to the caller's slice: the same actions
// after what the slice held, and a tick of an Active allocates nothing.
// The advert bytes handed out stay as they were when the advert changes
// (a caller may keep them).
func TestSyncGroupAppendStep(t *testing.T) {
	plain, appended := twoFamilies(t), twoFamilies(t)
	prefix := MemberAction{Member: 7, Action: Rejected{}}
	var buf []MemberAction
	var kept []byte
	var keptCopy string
	for _, at := range []struct {
		d  time.Duration
		ev Event
	}{{0, Start{}}, {4 * time.Second, Tick{}}, {5 * time.Second, Tick{}}, {6 * time.Second, Tick{}}, {7 * time.Second, Shutdown{}}} {
		now := t0.Add(at.d)
		want := renderMember(plain.Step(now, -1, at.ev))
		buf = appended.AppendStep(append(buf[:0], prefix), now, -1, at.ev)
		if buf[0] != prefix {
			t.Fatalf("%v at %v: the caller's action was overwritten: %v", at.ev, at.d, buf[0])
		}
		if diff := cmp.Diff(want, renderMember(buf[1:])); diff != "" {
			t.Fatalf("%v at %v (-Step +AppendStep):\n%s", at.ev, at.d, diff)
		}
		for _, ma := range buf[1:] {
			if s, ok := ma.Action.(SendAdvert); ok && ma.Member == 0 && kept == nil && at.d == 5*time.Second {
				kept, keptCopy = s.Data, string(s.Data)
			}
		}
	}
	if kept == nil || string(kept) != keptCopy {
		t.Errorf("an advert handed out changed later: %x, was %x", kept, keptCopy)
	}

	g := twoFamilies(t)
	g.Step(t0, -1, Start{})
	now := t0.Add(4 * time.Second)
	buf = g.AppendStep(buf[:0], now, -1, Tick{})
	if g.State() != StateActive {
		t.Fatalf("not Active: %v", renderMember(buf))
	}
	sent := 0
	allocs := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Second)
		buf = g.AppendStep(buf[:0], now, -1, Tick{})
		for _, ma := range buf {
			if _, ok := ma.Action.(SendAdvert); ok {
				sent++
			}
		}
	})
	if allocs != 0 || sent < 101 {
		t.Errorf("an Active's tick: %v allocations, %d adverts in 101 ticks; want 0 allocations and an advert each", allocs, sent)
	}
}
