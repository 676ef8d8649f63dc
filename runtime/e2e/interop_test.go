package e2e

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// TestLinkDownUp: the Active's link goes down, the Backup takes over; the
// link comes back, the higher priority preempts and the Backup gives the
// VIP back.
func TestLinkDownUp(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	c := pair()
	c.SetupAddresses(lab)
	a := StartAgent(t, lab, c.Plan("a"))
	b := StartAgent(t, lab, c.Plan("b"))
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 5*time.Second)

	lab.LinkDown("a")
	waitState(t, b, "Active", 3*time.Second)
	Eventually(t, 2*time.Second, "b holds the VIP", func() (bool, string) {
		return lab.HasAddr("b", "192.0.2.100/24"), ""
	})
	time.Sleep(300 * time.Millisecond) // a keeps trying to send meanwhile
	lab.LinkUp("a")
	waitState(t, a, "Active", 3*time.Second)
	waitState(t, b, "Backup", 3*time.Second)
	Eventually(t, 2*time.Second, "VIP only on a", func() (bool, string) {
		return lab.HasAddr("a", "192.0.2.100/24") && !lab.HasAddr("b", "192.0.2.100/24"), ""
	})
	if v := metric(t, a, `mwgc_agent_send_errors_total{group="inside-v4"}`); v == 0 {
		t.Logf("no send errors counted while the link was down (the kernel queued the adverts)")
	}
}

// TestKeepalivedPeer: keepalived (the Debian package) and mwgc-agent share
// VRID 51, keepalived named in the plan as an external peer. mwgc preempts
// keepalived and hands back on SIGTERM; with a lower priority, mwgc yields
// to keepalived, takes over on keepalived's graceful stop, and yields again
// when keepalived comes back. tshark must decode every mwgc advert as VRRPv3
// with a good checksum.
func TestKeepalivedPeer(t *testing.T) {
	lab := netlab.New(t, "a", "k")
	netlab.Require(t, "keepalived")
	kAddr := netip.MustParseAddr("192.0.2.21")
	c := &Cluster{
		Name:      "edge",
		Directors: []Director{{Node: "a", Priority: 200, Index: 11}},
		Groups: []Group{
			{Name: "inside-v4", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"}},
		},
		External: []ExternalPeer{{Name: "k", Addr: kAddr, Priority: 100}},
	}
	c.SetupAddresses(lab)
	lab.AddAddr("k", "192.0.2.21/24")
	kcfg := netlab.KeepalivedConfig{Instances: []netlab.KeepalivedInstance{{
		Name: "VI_51", VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond,
		VIPs: []string{"192.0.2.100/24"},
	}}}
	capture := lab.Capture(vrrpFilter)

	k := lab.StartKeepalived("k", kcfg)
	if !k.WaitState("VI_51", "MASTER", 1, 5*time.Second) {
		t.Fatalf("keepalived alone did not become MASTER:\n%s", k.Log())
	}

	// mwgc (200) preempts keepalived (100).
	a := StartAgent(t, lab, c.Plan("a"))
	waitState(t, a, "Active", 5*time.Second)
	if !k.WaitState("VI_51", "BACKUP", 1, 5*time.Second) {
		t.Fatalf("keepalived did not yield to mwgc-agent:\n%s", k.Log())
	}
	Eventually(t, 3*time.Second, "VIP only on a", func() (bool, string) {
		return lab.HasAddr("a", "192.0.2.100/24") && !lab.HasAddr("k", "192.0.2.100/24"), ""
	})

	// Graceful mwgc -> keepalived.
	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not exit 0: %v", err)
	}
	if !k.WaitState("VI_51", "MASTER", 2, 3*time.Second) {
		t.Fatalf("keepalived did not take over after mwgc-agent's SIGTERM:\n%s", k.Log())
	}

	// mwgc with priority 50 yields to keepalived (100).
	c.Directors[0].Priority = 50
	WritePlan(t, a.PlanPath, c.Plan("a"))
	a.Start(t)
	waitState(t, a, "Backup", 3*time.Second)
	time.Sleep(500 * time.Millisecond) // longer than a's Active_Down_Interval
	if s := a.State(); s != "Backup" {
		t.Fatalf("mwgc-agent with priority 50 is %s next to keepalived with 100", s)
	}
	if lab.HasAddr("a", "192.0.2.100/24") {
		t.Fatalf("backup mwgc-agent holds the VIP")
	}

	// Graceful keepalived -> mwgc.
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, "Active", 3*time.Second)
	Eventually(t, 2*time.Second, "VIP on a", func() (bool, string) {
		return lab.HasAddr("a", "192.0.2.100/24") && !lab.HasAddr("k", "192.0.2.100/24"), ""
	})

	// keepalived comes back with the higher priority and preempts mwgc.
	k = lab.StartKeepalived("k", kcfg)
	if !k.WaitState("VI_51", "MASTER", 1, 5*time.Second) {
		t.Fatalf("keepalived did not preempt mwgc-agent:\n%s", k.Log())
	}
	waitState(t, a, "Backup", 3*time.Second)
	Eventually(t, 2*time.Second, "VIP moved to k", func() (bool, string) {
		return !lab.HasAddr("a", "192.0.2.100/24") && lab.HasAddr("k", "192.0.2.100/24"), ""
	})

	ads, err := netlab.DecodeVRRP(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	var fromA []netlab.VRRPAdvert
	for _, ad := range ads {
		if ad.Src == "192.0.2.11" {
			fromA = append(fromA, ad)
		}
	}
	if len(fromA) < 10 {
		t.Fatalf("only %d adverts from mwgc-agent in the capture", len(fromA))
	}
	for _, ad := range fromA {
		if ad.Version != 3 || ad.Type != 1 || ad.VRID != 51 || ad.TTL != 255 || !ad.ChecksumOK ||
			!slices.Equal(ad.Addresses, []string{"192.0.2.100"}) || ad.Interval != 10 {
			t.Errorf("tshark does not see a valid VRRPv3 advert: %+v", ad)
			break
		}
	}
	// The two graceful handovers, from the capture.
	handover := func(from, to string, toPriority int) {
		t.Helper()
		i := slices.IndexFunc(ads, func(ad netlab.VRRPAdvert) bool { return ad.Src == from && ad.Priority == 0 })
		if i < 0 {
			t.Errorf("no priority-0 advert from %s", from)
			return
		}
		j := slices.IndexFunc(ads[i:], func(ad netlab.VRRPAdvert) bool { return ad.Src == to })
		if j < 0 {
			t.Errorf("%s never advertised after %s's priority 0", to, from)
			return
		}
		gap := ads[i+j].Time.Sub(ads[i].Time)
		skew := time.Duration(256-toPriority) * 100 * time.Millisecond / 256
		down := 300*time.Millisecond + skew
		t.Logf("handover %s -> %s: %v (Skew_Time %v)", from, to, gap, skew)
		if gap >= down {
			t.Errorf("handover %s -> %s took %v, not less than Active_Down_Interval %v", from, to, gap, down)
		}
	}
	handover("192.0.2.11", "192.0.2.21", 100)
	handover("192.0.2.21", "192.0.2.11", 50)
}
