package agent

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

var outsideSrc = netip.MustParseAddr("198.51.100.11")

const connOutside = "eth1/false/198.51.100.11"

// twoSegmentPlan: a node with one group on eth0 and one on eth1, one sync
// group.
func twoSegmentPlan() *plan.Plan {
	p := testPlan()
	p.VRRP.Groups = append(p.VRRP.Groups, plan.Group{
		Name: "outside-v4", VRID: 52, Interface: "eth1", Family: plan.FamilyIPv4, Version: 3,
		AdvertInterval: plan.Duration(10 * time.Millisecond), Preempt: true, Checksum: plan.ChecksumRFC9568,
		Source: outsideSrc, VIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.100/24")},
		Peers: []plan.Peer{{Name: "b", Address: netip.MustParseAddr("198.51.100.12"), Priority: 100}},
	})
	return p
}

func (h *harness) waitFault(want bool) {
	h.t.Helper()
	h.eventually("fault="+map[bool]string{true: "yes", false: "no"}[want], func() bool {
		return (h.status().State == "Fault") == want
	})
}

// TestFaultOnOneLinkTakesEveryGroupOut: the link of one group goes down on
// the Active; the node leaves the election for both groups (priority 0
// where it can still send, VIPs removed, no adverts, peer adverts not
// answered), reports Fault, and rejoins when the link is back.
func TestFaultOnOneLinkTakesEveryGroupOut(t *testing.T) {
	h := start(t, twoSegmentPlan())
	h.waitActive()
	h.eventually("both VIPs", func() bool {
		s := h.status()
		return len(s.Groups[0].VIPs) == 1 && len(s.Groups[1].VIPs) == 1
	})
	if v := h.metric(`mwgc_agent_fault`); v != 0 {
		t.Fatalf("fault gauge %v while all links are up", v)
	}

	h.net.setLink("eth1", false)
	h.waitFault(true)
	s := h.status()
	if diff := cmp.Diff([]string{"eth1"}, s.InterfacesDown); diff != "" {
		t.Errorf("interfacesDown (-want +got):\n%s", diff)
	}
	for _, g := range s.Groups {
		if g.State != "Fault" || len(g.VIPs) != 0 {
			t.Errorf("group %s in Fault: state %s, VIPs %v", g.Name, g.State, g.VIPs)
		}
	}
	for series, want := range map[string]float64{`mwgc_agent_fault`: 1, `mwgc_agent_interface_up{interface="eth1"}`: 0,
		`mwgc_agent_interface_up{interface="eth0"}`: 1, `mwgc_agent_state{group="inside-v4"}`: 3,
		`mwgc_agent_state{group="outside-v4"}`: 3, `mwgc_agent_active`: 0} {
		if got := h.metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, c := range []struct {
		key string
		src netip.Addr
		vip string
	}{{connV4, self, "remove eth0 192.0.2.100/24"}, {connOutside, outsideSrc, "remove eth1 198.51.100.100/24"}} {
		ads := h.net.conn(c.key).adverts(t, c.src)
		if last := ads[len(ads)-1]; last.Priority != 0 {
			t.Errorf("%s: last advert before Fault has priority %d, want 0", c.key, last.Priority)
		}
		if n := len(h.net.callsMatching(c.vip)); n != 1 { // Fault (the node was Active: nothing left over to clean)
			t.Errorf("%q done %d times, want 1", c.vip, n)
		}
	}

	// In Fault the node neither advertises nor answers the peer's lower
	// priority adverts (which would make it Active again: the flap).
	sent := len(h.net.conn(connV4).adverts(t, self))
	inside := h.net.conn(connV4)
	for range 5 {
		ad := vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, MaxAdvertInterval: 1,
			Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
		b, err := ad.Marshal(peer, netip.MustParseAddr("224.0.0.18"), vrrp.ChecksumPseudoHeader)
		if err != nil {
			t.Fatal(err)
		}
		inside.inject(fakePacket{src: peer, dst: netip.MustParseAddr("224.0.0.18"), data: b})
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(h.net.conn(connV4).adverts(t, self)); n != sent {
		t.Errorf("%d adverts sent in Fault", n-sent)
	}
	if s := h.status(); s.State != "Fault" {
		t.Fatalf("state %s after peer adverts in Fault", s.State)
	}
	if n := len(h.net.callsMatching("add ")); n != 2 {
		t.Errorf("%d VIP adds, want only the 2 of the first takeover", n)
	}

	// Link back: Backup first (Start), then Active again.
	h.net.setLink("eth1", true)
	h.waitFault(false)
	h.waitActive()
	h.eventually("both VIPs back", func() bool { return len(h.net.callsMatching("add ")) == 4 })
	if v := h.metric(`mwgc_agent_fault`); v != 0 {
		t.Errorf("fault gauge %v after the link came back", v)
	}
	if v := h.metric(`mwgc_agent_transitions_total{from="Initialize",group="outside-v4",to="Backup"}`); v != 2 {
		t.Errorf("Initialize->Backup transitions of outside-v4 = %v, want 2 (start-up and after Fault)", v)
	}
}

// TestStartInFault: an interface already down at start keeps the node out
// of the election from the first moment: no advert, no VIP.
func TestStartInFault(t *testing.T) {
	fn := newFakeNet()
	fn.links[2].Up = false // eth1
	h := startWith(t, fn, twoSegmentPlan())
	s := h.status()
	if s.State != "Fault" {
		t.Fatalf("first status: %s, want Fault", s.State)
	}
	time.Sleep(100 * time.Millisecond) // ten advert intervals
	for key, src := range map[string]netip.Addr{connV4: self, connOutside: outsideSrc} {
		if n := len(h.net.conn(key).adverts(t, src)); n != 0 {
			t.Errorf("%s: %d adverts sent in Fault", key, n)
		}
	}
	if n := len(h.net.callsMatching("add ")); n != 0 {
		t.Errorf("VIPs added in Fault: %v", h.net.callsMatching("add "))
	}
	if v := h.metric(`mwgc_agent_transitions_total{from="Initialize",group="inside-v4",to="Backup"}`); v != 0 {
		t.Errorf("a group started in Fault")
	}
	h.net.setLink("eth1", true)
	h.waitActive()
}

// TestReloadOnDownLink: a reload that adds a group on a down link puts the
// node into Fault; removing the group again brings it back.
func TestReloadOnDownLink(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	h.net.setLink("eth1", false) // not used yet: no effect
	time.Sleep(50 * time.Millisecond)
	if s := h.status(); s.State != "Active" {
		t.Fatalf("an unused interface going down changed the state to %s", s.State)
	}
	h.write(twoSegmentPlan())
	h.waitFault(true)
	if s := h.status(); len(s.Groups) != 2 || s.Groups[1].State != "Fault" {
		t.Fatalf("after reload: %+v", s.Groups)
	}
	if v := h.metric(`mwgc_agent_transitions_total{from="Initialize",group="outside-v4",to="Backup"}`); v != 0 {
		t.Errorf("the added group was started although the node is in Fault")
	}
	h.write(testPlan())
	h.waitFault(false)
	h.waitActive()
	if h.hasSeries(`mwgc_agent_interface_up{interface="eth1"}`) {
		t.Errorf("eth1 still exported after its group was removed")
	}
	if !h.hasSeries(`mwgc_agent_interface_up{interface="eth0"}`) {
		t.Errorf("eth0 not exported")
	}
}

func (h *harness) hasSeries(series string) bool {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return strings.Contains(rec.Body.String(), "\n"+series+" ")
}

// TestLinkUpRestoresLinkLocal: an administrative down flushes the IPv6
// link-local advert source the agent added; it is added again when the
// link comes back, before the groups restart.
func TestLinkUpRestoresLinkLocal(t *testing.T) {
	p := testPlan()
	ll := netip.MustParseAddr("fe80::b")
	p.Interfaces[0].LinkLocal = ll
	p.Interfaces[0].Addresses = append(p.Interfaces[0].Addresses, netip.MustParsePrefix("2001:db8::11/64"))
	p.VRRP.Groups = append(p.VRRP.Groups, plan.Group{
		Name: "inside-v6", VRID: 51, Interface: "eth0", Family: plan.FamilyIPv6, Version: 3,
		AdvertInterval: plan.Duration(10 * time.Millisecond), Preempt: true, Source: ll,
		VIPs:  []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64")},
		Peers: []plan.Peer{{Name: "b", Address: netip.MustParseAddr("fe80::c"), Priority: 100}},
	})
	h := start(t, p)
	h.waitActive()
	if n := len(h.net.callsMatching("ll eth0 fe80::b")); n != 1 {
		t.Fatalf("link-local ensured %d times at start, want 1", n)
	}
	h.net.setLink("eth0", false)
	h.waitFault(true)
	h.net.setLink("eth0", true)
	h.waitFault(false)
	if n := len(h.net.callsMatching("ll eth0 fe80::b")); n != 2 {
		t.Errorf("link-local ensured %d times, want 2 (start and link up)", n)
	}
	h.waitActive()
}
