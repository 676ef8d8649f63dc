package impersonation

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0    = time.Unix(1_700_000_000, 0)
	own   = netip.MustParseAddr("192.0.2.11")
	ownLL = netip.MustParseAddr("fe80::11")
	peer  = netip.MustParseAddr("192.0.2.12")
	other = netip.MustParseAddr("192.0.2.99")
	macX  = net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
	macP  = net.HardwareAddr{2, 0, 0, 0, 0, 0x12}
)

func TestOwnAddress(t *testing.T) {
	tr := New([]netip.Addr{own, ownLL}, []netip.Addr{peer})
	if ev := tr.Frame(t0, "eth0", peer, macP); ev != nil {
		t.Fatalf("a peer's own advert raised %+v", ev)
	}
	if ev := tr.Frame(t0, "eth0", other, macX); ev != nil {
		t.Fatalf("an unlisted source raised %+v", ev)
	}
	ev := tr.Frame(t0, "eth0", own, macX)
	want := &Event{Raised: true, Unlogged: 1, Alarm: Alarm{Kind: OwnAddress, Addr: own, Where: "eth0", MAC: macX.String(), MACSeen: t0, Since: t0, Last: t0, Count: 1,
		MACs: []MACSeen{{MAC: macX.String(), Last: t0, Count: 1}}}}
	if diff := cmp.Diff(want, ev, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("first forgery (-want +got):\n%s", diff)
	}
	// A flood: one log line per LogEvery, with what was left unlogged.
	var lines int
	var unlogged uint64
	for i := 1; i <= 2000; i++ {
		if ev := tr.Frame(t0.Add(time.Duration(i)*10*time.Millisecond), "eth0", own, macX); ev != nil {
			lines++
			unlogged += ev.Unlogged
			if ev.Raised || ev.Since != t0 {
				t.Fatalf("repeat line %+v", ev)
			}
		}
	}
	if lines != 2 || unlogged != 2000 {
		t.Fatalf("20 s of flood: %d lines covering %d frames, want 2 covering 2000", lines, unlogged)
	}
	if got := tr.Alarms(); len(got) != 1 || got[0].Count != 2001 {
		t.Fatalf("alarms %+v", got)
	}
	// Quiet for ClearAfter: cleared once.
	last := t0.Add(20 * time.Second)
	if ev := tr.Expire(last.Add(59 * time.Second)); len(ev) != 0 {
		t.Fatalf("cleared early: %+v", ev)
	}
	if ev := tr.Expire(last.Add(time.Minute)); len(ev) != 1 || !ev[0].Cleared || len(tr.Alarms()) != 0 {
		t.Fatalf("not cleared: %+v", ev)
	}
}

func TestAuthFailureCarriesMAC(t *testing.T) {
	tr := New([]netip.Addr{own}, []netip.Addr{peer})
	tr.Frame(t0, "eth0", peer, macX) // the forger's frame in the peer's name
	tr.Frame(t0, "eth0", peer, macP) // the real peer's next advert
	ev := tr.AuthFailure(t0.Add(time.Millisecond), "proxy", peer, "auth-bad-mac")
	if ev == nil || !ev.Raised || ev.Kind != AuthFailure || ev.Reason != "auth-bad-mac" || ev.Where != "proxy" {
		t.Fatalf("event %+v", ev)
	}
	// Both MACs that used the peer's address are listed, the latest first.
	if len(ev.MACs) != 2 || ev.MACs[0].MAC != macP.String() || ev.MACs[1].MAC != macX.String() || ev.MAC != macP.String() {
		t.Fatalf("MACs %+v", ev.MACs)
	}
	ev2 := tr.AuthFailure(t0.Add(2*time.Millisecond), "proxy", peer, "auth-missing")
	if ev2 != nil {
		t.Fatalf("second failure logged at once: %+v", ev2)
	}
	if a := tr.Alarms(); len(a) != 1 || a[0].Reason != "auth-missing" || a[0].Count != 2 {
		t.Fatalf("alarms %+v", a)
	}
	// A new plan without the peer forgets its MAC.
	tr.SetAddresses([]netip.Addr{own}, nil)
	if a := tr.Alarms(); a[0].MAC != "" || len(a[0].MACs) != 0 {
		t.Fatalf("MAC of a dropped peer kept: %+v", a[0])
	}
}

func TestKindLabels(t *testing.T) {
	var got []string
	for _, k := range Kinds() {
		got = append(got, k.String())
	}
	if diff := cmp.Diff([]string{"own-address", "auth-failure", "vip-claim"}, got); diff != "" {
		t.Errorf("kind labels (-want +got):\n%s", diff)
	}
}

// TestVIPClaim: claims of a VIP raise one alarm per VIP and group that
// keeps the MACs it was claimed at (latest first, with counts), logs the
// first claim at once and later ones at most every LogEvery, survives a
// new plan (a VIP is no member address), and clears after ClearAfter.
func TestVIPClaim(t *testing.T) {
	t0 := time.Unix(1000, 0)
	vip := netip.MustParseAddr("192.0.2.100")
	tr := New([]netip.Addr{netip.MustParseAddr("192.0.2.11")}, nil)
	ev := tr.Claim(t0, "g1", vip, "02:ba:d0:00:00:01", "arp-reply", 3)
	if ev == nil || !ev.Raised || ev.Kind != VIPClaim || ev.Addr != vip || ev.Where != "g1" || ev.MAC != "02:ba:d0:00:00:01" || ev.Count != 3 || ev.Reason != "arp-reply" {
		t.Fatalf("first claim: %+v", ev)
	}
	if ev := tr.Claim(t0.Add(time.Second), "g1", vip, "02:ba:d0:00:00:02", "arp-request", 1); ev != nil {
		t.Fatalf("a second claim within LogEvery logged: %+v", ev)
	}
	tr.SetAddresses([]netip.Addr{netip.MustParseAddr("192.0.2.11")}, nil)
	a := tr.Alarms()
	want := []MACSeen{{MAC: "02:ba:d0:00:00:02", Last: t0.Add(time.Second), Count: 1}, {MAC: "02:ba:d0:00:00:01", Last: t0, Count: 3}}
	if len(a) != 1 || a[0].Count != 4 || a[0].MAC != "02:ba:d0:00:00:02" {
		t.Fatalf("alarms %+v", a)
	}
	if diff := cmp.Diff(want, a[0].MACs); diff != "" {
		t.Errorf("MACs (-want +got):\n%s", diff)
	}
	ev = tr.Claim(t0.Add(11*time.Second), "g1", vip, "02:ba:d0:00:00:02", "arp-request", 1)
	if ev == nil || ev.Raised || ev.Unlogged != 2 {
		t.Fatalf("claim after LogEvery: %+v; want a line with the 2 claims since the last", ev)
	}
	if cleared := tr.Expire(t0.Add(11*time.Second + time.Minute)); len(cleared) != 1 || !cleared[0].Cleared || cleared[0].Kind != VIPClaim {
		t.Fatalf("expire: %+v", cleared)
	}
}
