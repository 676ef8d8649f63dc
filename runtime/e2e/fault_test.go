package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// twoSegments: directors a and b of threeDirectors, each with an IPv4 and
// an IPv6 group on eth0 and an IPv4 group on eth1, in one sync group.
func twoSegments() *Cluster {
	c := threeDirectors()
	c.Directors = c.Directors[:2]
	return c
}

// expectRoles waits until every group of each agent is in the given state
// ("Active", "Backup" or "Fault") and the Active alone holds both VIPs.
func expectRoles(t *testing.T, lab *netlab.Lab, timeout time.Duration, want map[*Agent]string) {
	t.Helper()
	Eventually(t, timeout, "roles", func() (bool, string) {
		ok := true
		var why []string
		for a, state := range want {
			s, err := a.Status()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", a.Node, err)
			}
			if s.State != state {
				ok = false
			}
			for _, g := range s.Groups {
				if g.State != state {
					ok = false
				}
			}
			var held []string
			for _, v := range allVIPs {
				// On the interface, or on the group's virtual-MAC macvlan.
				if HasAddrOn(lab, a.Node, v.iface, v.prefix) || HasAddrOn(lab, a.Node, "vmac4-52", v.prefix) {
					held = append(held, v.prefix)
				}
			}
			if (state == "Active") != (len(held) == len(allVIPs)) || (state != "Active" && len(held) > 0) {
				ok = false
			}
			why = append(why, fmt.Sprintf("%s=%s(%s) vips=%v down=%v", a.Node, s.State, groupStates(s.Groups), held, s.InterfacesDown))
		}
		slices.Sort(why)
		return ok, strings.Join(why, "; ")
	})
}

// TestLinkFault: the Active's eth1 goes down while eth0 stays up. Without
// a Fault state the peer would win the eth1 segment, its sync group would
// force its eth0 group Active, a would answer with its higher priority on
// eth0, and the two would swap every Active_Down_Interval. With it, a
// leaves the election for both groups, b holds both and nobody moves until
// the link is back; then a rejoins and preempts. The same for eth0, where
// the IPv6 group's link-local source must be restored. An agent started
// while eth1 is down starts in Fault.
func TestLinkFault(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	c := twoSegments()
	c.SetupAddresses(lab)
	c.AddSecondSegment(t, lab)
	b := StartAgent(t, lab, c.Plan("b"))
	a := StartAgent(t, lab, c.Plan("a"))
	expectRoles(t, lab, 5*time.Second, map[*Agent]string{a: "Active", b: "Backup"})

	// eth1 of the Active down: b takes both groups within a few
	// Active_Down_Intervals (~0.34 s for priority 150 at 100 ms).
	lab.SetLink("a", "eth1", false)
	expectRoles(t, lab, 3*time.Second, map[*Agent]string{a: "Fault", b: "Active"})
	if v := metric(t, a, "mwgc_agent_fault"); v != 1 {
		t.Errorf("a: mwgc_agent_fault = %v, want 1", v)
	}
	if v := metric(t, a, `mwgc_agent_interface_up{interface="eth1"}`); v != 0 {
		t.Errorf("a: interface_up{eth1} = %v, want 0", v)
	}
	if s, _ := a.Status(); s == nil || !slices.Equal(s.InterfacesDown, []string{"eth1"}) {
		t.Errorf("a: /status does not name eth1 as down: %+v", s)
	}

	// No flapping: about 5 Active_Down_Intervals without a transition.
	ta, tb := transitions(t, a), transitions(t, b)
	time.Sleep(2 * time.Second)
	if na, nb := transitions(t, a), transitions(t, b); na != ta || nb != tb {
		t.Errorf("flapping while a's eth1 is down: a %d -> %d, b %d -> %d transitions in 2 s", ta, na, tb, nb)
	}
	expectRoles(t, lab, time.Second, map[*Agent]string{a: "Fault", b: "Active"})

	// Link back: a rejoins as Backup and preempts (200 > 150) for both.
	lab.SetLink("a", "eth1", true)
	expectRoles(t, lab, 3*time.Second, map[*Agent]string{a: "Active", b: "Backup"})
	if v := metric(t, a, "mwgc_agent_fault"); v != 0 {
		t.Errorf("a: mwgc_agent_fault = %v after the link came back", v)
	}
	if !strings.Contains(a.Proc.Log(), "fault cleared") {
		t.Errorf("a logged no end of the fault:\n%s", a.Proc.Log())
	}

	// eth0 this time, which carries the IPv6 group: an administrative
	// down flushes the link-local advert source, which the agent must put
	// back before rejoining, or its IPv6 group could not advertise and the
	// two nodes would flap over it.
	lab.SetLink("a", "eth0", false)
	expectRoles(t, lab, 3*time.Second, map[*Agent]string{a: "Fault", b: "Active"})
	lab.SetLink("a", "eth0", true)
	expectRoles(t, lab, 3*time.Second, map[*Agent]string{a: "Active", b: "Backup"})
	ta, tb = transitions(t, a), transitions(t, b)
	time.Sleep(time.Second)
	if na, nb := transitions(t, a), transitions(t, b); na != ta || nb != tb {
		t.Errorf("flapping after eth0 came back: a %d -> %d, b %d -> %d transitions in 1 s", ta, na, tb, nb)
	}

	// Started with eth1 down: Fault from the first status on, b keeps
	// both groups.
	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("a did not exit on SIGTERM: %v", err)
	}
	expectRoles(t, lab, 3*time.Second, map[*Agent]string{b: "Active"})
	lab.SetLink("a", "eth1", false)
	a.Start(t)
	if s, err := a.Status(); err != nil || s.State != "Fault" {
		t.Fatalf("a started with eth1 down: first status %+v (%v), want Fault", s, err)
	}
	tb = transitions(t, b)
	time.Sleep(500 * time.Millisecond)
	expectRoles(t, lab, time.Second, map[*Agent]string{a: "Fault", b: "Active"})
	if nb := transitions(t, b); nb != tb {
		t.Errorf("b moved while a started in Fault: %d -> %d transitions", tb, nb)
	}
	lab.SetLink("a", "eth1", true)
	expectRoles(t, lab, 3*time.Second, map[*Agent]string{a: "Active", b: "Backup"})
}

// TestInterfaceRecreated: the Active's eth1 is deleted and made again
// under the same name, as ifdown/ifup of a VLAN or a bond does — a new
// interface index. The agent must bind its sockets, announcers and
// watchers to the new interface: otherwise it would rejoin deaf and mute,
// take over beside the real Active after Active_Down_Interval and keep
// both holding the VIPs. The Backup's eth1 first (deaf, it would take
// over), then the Active's twice: each time the roles come back and stay.
func TestInterfaceRecreated(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	c := twoSegments()
	for i := range c.Groups {
		// eth1's group runs with its virtual MAC: the macvlan goes with
		// its parent and must be made again.
		c.Groups[i].VirtualMAC = c.Groups[i].Iface == "eth1"
	}
	c.SetupAddresses(lab)
	c.AddSecondSegment(t, lab)
	b := StartAgent(t, lab, c.Plan("b"))
	a := StartAgent(t, lab, c.Plan("a"))
	expectRoles(t, lab, 5*time.Second, map[*Agent]string{a: "Active", b: "Backup"})

	// The Backup's first: deaf, it would take over beside a; then the
	// Active's, twice.
	toActive := func(ag *Agent) int { return strings.Count(ag.Proc.Log(), `"to":"Active"`) }
	for round, node := range []string{"b", "a", "a"} {
		bActive := toActive(b)
		c.RecreateSecondSegment(t, lab, node)
		expectRoles(t, lab, 5*time.Second, map[*Agent]string{a: "Active", b: "Backup"})
		if node == "b" {
			time.Sleep(time.Second) // several of b's Active_Down_Intervals
			if n := toActive(b) - bActive; n > 0 {
				t.Errorf("round %d: b took over %d times after its eth1 came back: it does not hear a there", round, n)
			}
		}
		ta, tb := transitions(t, a), transitions(t, b)
		time.Sleep(time.Second)
		if na, nb := transitions(t, a), transitions(t, b); na != ta || nb != tb {
			t.Errorf("round %d (%s's eth1): transitions after eth1 came back: a %d -> %d, b %d -> %d in 1 s", round, node, ta, na, tb, nb)
		}
		expectRoles(t, lab, time.Second, map[*Agent]string{a: "Active", b: "Backup"})
	}
	for _, ag := range []*Agent{a, b} {
		log := ag.Proc.Log()
		if !strings.Contains(log, "interface re-created under the same name") {
			t.Errorf("%s did not log the re-binding", ag.Node)
		}
		// ENXIO: sent through a socket bound to the deleted interface.
		if n := strings.Count(log, "no such device or address"); n > 0 {
			t.Errorf("%s: %d sends to the deleted interface\n%s", ag.Node, n, log)
		}
	}
}

// TestMACChanged: the Active's interface takes another MAC under the same
// index (a bond with fail_over_mac, an administrator). Its announcements
// must carry the new MAC: an announcer that kept the old one would send
// clients to an address nobody has. Here a claim of the VIP makes the
// Active announce; the capture shows the answer from the new MAC, and the
// client's entry for the VIP ends at it.
func TestMACChanged(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, _ := startPair(t, lab, cl)
	const newMAC = "02:00:5e:aa:bb:01"
	lab.Run("a", "ip", "link", "set", "dev", "eth0", "address", newMAC)
	// Until the agent took the link report (it logs the change; without
	// the fix it never does, and the checks below show what follows).
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(a.Proc.Log(), "interface MAC changed") {
			break
		}
	}
	neigh := SampleNeighbour(t, lab, "c", vip4)
	prober := StartProber(t, lab, "c", vip4, 10*time.Millisecond, 0)
	defer prober.Stop()
	capture := lab.Capture("arp and ether src " + newMAC)
	f := lab.Forger("x", "")
	if err := f.SendFrame(netlab.GratuitousARP(f.MAC(), vip4)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	arps, err := netlab.DecodeARP(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	answered := false
	for _, p := range arps {
		if p.Gratuitous && p.SenderIP == vip4.String() && p.SenderMAC == newMAC {
			answered = true
		}
	}
	if !answered {
		t.Errorf("no gratuitous ARP for the VIP from the new MAC %s (captured %+v)\n%s", newMAC, arps, a.Proc.Log())
	}
	s := neigh.Stop()
	if last := s[len(s)-1].MAC; last != newMAC {
		t.Errorf("the client's entry for the VIP ends at %q, want the new MAC %s", last, newMAC)
	}
	if !strings.Contains(a.Proc.Log(), "interface MAC changed") {
		t.Error("a did not log the MAC change")
	}
}
