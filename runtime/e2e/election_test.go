package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/agent"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// threeDirectors: every director runs an IPv4 and an IPv6 group on eth0 and
// an IPv4 group on eth1; all three move together.
func threeDirectors() *Cluster {
	return &Cluster{
		Name: "edge",
		Directors: []Director{
			{Node: "a", Priority: 200, Index: 11},
			{Node: "b", Priority: 150, Index: 12},
			{Node: "c", Priority: 100, Index: 13},
		},
		Groups: []Group{
			{Name: "inside-v4", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"}},
			{Name: "inside-v6", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv6, VIPs: []string{"2001:db8::100/64"}},
			{Name: "outside-v4", VRID: 52, Iface: "eth1", Family: plan.FamilyIPv4, VIPs: []string{"198.51.100.100/24"}},
		},
	}
}

var allVIPs = []struct{ iface, prefix string }{
	{"eth0", "192.0.2.100/24"}, {"eth0", "2001:db8::100/64"}, {"eth1", "198.51.100.100/24"},
}

// holdsAll / holdsNone compare the kernel's view with what the node should hold.
func vipReport(lab *netlab.Lab, node string) (held int, list []string) {
	for _, v := range allVIPs {
		if HasAddrOn(lab, node, v.iface, v.prefix) {
			held++
			list = append(list, v.prefix)
		}
	}
	return held, list
}

// expectActive waits until want is Active for every group with all VIPs,
// and every other running agent is Backup for every group with no VIP.
func expectActive(t *testing.T, lab *netlab.Lab, agents map[string]*Agent, want string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, want+" Active alone", func() (bool, string) {
		var why []string
		ok := true
		for node, a := range agents {
			if a.Proc.Exited() {
				continue
			}
			s, err := a.Status()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", node, err)
			}
			wantState := "Backup"
			if node == want {
				wantState = "Active"
			}
			for _, g := range s.Groups {
				if g.State != wantState {
					ok = false
				}
			}
			held, list := vipReport(lab, node)
			if (node == want && held != len(allVIPs)) || (node != want && held != 0) {
				ok = false
			}
			why = append(why, fmt.Sprintf("%s=%s vips=%v", node, groupStates(s.Groups), list))
		}
		return ok, strings.Join(why, "; ")
	})
}

func groupStates(gs []agent.GroupStatus) string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name+":"+g.State)
	}
	return strings.Join(out, ",")
}

// TestElectionFailoverAndHandover: three directors with a sync group of an
// IPv4 and an IPv6 group on eth0 and an IPv4 group on eth1 elect the highest
// priority, which alone holds every VIP; kill -9 of the Active moves every
// group to the next; the restarted node cleans up the VIPs its crash left
// and preempts; SIGTERM hands over after about Skew_Time and exits 0.
func TestElectionFailoverAndHandover(t *testing.T) {
	lab := netlab.New(t, "a", "b", "c")
	c := threeDirectors()
	c.SetupAddresses(lab)
	c.AddSecondSegment(t, lab)
	capture := lab.Capture(vrrpFilter)
	announcements := lab.Capture("arp or icmp6")

	agents := map[string]*Agent{}
	for _, node := range []string{"c", "b", "a"} {
		agents[node] = StartAgent(t, lab, c.Plan(node))
	}
	expectActive(t, lab, agents, "a", 5*time.Second)
	time.Sleep(100 * time.Millisecond) // the takeover burst: 3 packets 10 ms apart
	checkAnnouncements(t, lab, announcements.Stop(), agents["a"])

	// kill -9: b takes every group within a few Active_Down_Intervals
	// (~0.34 s for priority 150).
	if err := agents["a"].Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	agents["a"].Proc.Wait(5 * time.Second)
	killed := agents["a"]
	delete(agents, "a")
	expectActive(t, lab, agents, "b", 3*time.Second)

	// The crashed agent left its VIPs behind; the restart removes them
	// before anything else and preempts (a has the highest priority).
	if held, _ := vipReport(lab, "a"); held != len(allVIPs) {
		t.Fatalf("after kill -9, a should still carry its VIPs (nobody removed them), has %d", held)
	}
	killed.Start(t)
	agents["a"] = killed
	expectActive(t, lab, agents, "a", 5*time.Second)

	// SIGTERM: priority-0 adverts, VIPs removed, exit 0; b takes over
	// after Skew_Time instead of Active_Down_Interval.
	if err := agents["a"].Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := agents["a"].Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not exit 0 on SIGTERM: %v\n%s", err, agents["a"].Proc.Log())
	}
	if held, list := vipReport(lab, "a"); held != 0 {
		t.Errorf("after SIGTERM a still holds %v", list)
	}
	expectActive(t, lab, agents, "b", 3*time.Second)

	pcap := capture.Stop()
	ads, err := netlab.DecodeVRRP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	// Find a's priority-0 advert and b's first advert after it, per group.
	for _, g := range []struct {
		name     string
		vrid     int
		fromA    string
		fromB    string
		interval time.Duration
	}{
		{"inside-v4", 51, "192.0.2.11", "192.0.2.12", 100 * time.Millisecond},
		{"inside-v6", 51, "fe80::b", "fe80::c", 100 * time.Millisecond},
	} {
		i := slices.IndexFunc(ads, func(ad netlab.VRRPAdvert) bool {
			return ad.Src == g.fromA && ad.VRID == g.vrid && ad.Priority == 0
		})
		if i < 0 {
			t.Errorf("%s: no priority-0 advert from a in the capture", g.name)
			continue
		}
		j := slices.IndexFunc(ads[i:], func(ad netlab.VRRPAdvert) bool { return ad.Src == g.fromB && ad.VRID == g.vrid })
		if j < 0 {
			t.Errorf("%s: b never advertised after a's priority 0", g.name)
			continue
		}
		gap := ads[i+j].Time.Sub(ads[i].Time)
		skew := time.Duration(256-150) * g.interval / 256
		down := 3*g.interval + skew
		t.Logf("%s: handover %v after the priority-0 advert (Skew_Time %v, Active_Down_Interval %v)", g.name, gap, skew, down)
		if gap >= down {
			t.Errorf("%s: handover took %v, not less than Active_Down_Interval %v: the priority-0 advert was not honoured", g.name, gap, down)
		}
		if ads[i].TTL != 255 {
			t.Errorf("%s: priority-0 advert sent with TTL/hop limit %d", g.name, ads[i].TTL)
		}
	}
}

// checkAnnouncements: the takeover burst (3 per VIP in these plans) went
// out from node's MAC: gratuitous ARPs for the IPv4 VIP and unsolicited
// neighbour advertisements with the override flag for the IPv6 VIP.
func checkAnnouncements(t *testing.T, lab *netlab.Lab, pcap string, a *Agent) {
	t.Helper()
	node := a.Node
	mac := lab.MAC(node)
	// The takeover burst, and one re-announcement burst (3 packets, the
	// default) for each time the node heard that another director had
	// been Active (started earlier, it yielded to this one).
	re, err := a.Metric(`mwgc_agent_reannouncements_total{group="inside-v4",reason="lower-priority"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := 3 * (1 + int(re))
	arps, err := netlab.DecodeARP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	garps := 0
	for _, p := range arps {
		if p.SenderIP == "192.0.2.100" && p.TargetIP == "192.0.2.100" && p.SenderMAC == mac {
			garps++
		}
	}
	nas, err := netlab.DecodeNA(pcap)
	if err != nil {
		t.Fatal(err)
	}
	unsolicited := 0
	for _, p := range nas {
		if p.Target == "2001:db8::100" && p.Override && !p.Solicited && p.TargetLinkAddr == mac {
			unsolicited++
		}
	}
	if garps != want || unsolicited != want {
		t.Errorf("takeover burst (and %v re-announcements) from %s (%s): %d gratuitous ARPs and %d unsolicited NAs, want %d each\nARP: %+v\nNA: %+v",
			re, node, mac, garps, unsolicited, want, arps, nas)
	}
}
