package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// claimOutcome is what a client felt of a VIP claim attack.
type claimOutcome struct {
	poisoned, samples int           // neighbour samples at the attacker's MAC, of all
	longest           time.Duration // longest stretch at the attacker's MAC
	lost, pings       int           // pings to the VIP without an answer, of all
	last              string        // the client's entry after the attack
}

// answered logs what the observer's entry did under the attack and checks
// that the claims were answered: the entry did point at the attacker (the
// attack reached the observer, so the test measures something), only
// briefly each time (150 ms at a stretch, a third of the samples at most),
// and ends at holderMAC.
func (o claimOutcome) answered(t *testing.T, observer, holderMAC string) {
	t.Helper()
	t.Logf("%s's entry pointed at the attacker in %d of %d samples, at most %v at a time; %d of %d pings lost",
		observer, o.poisoned, o.samples, o.longest, o.lost, o.pings)
	if o.poisoned == 0 {
		t.Errorf("%s's entry never pointed at the attacker: the attack did not reach it, the test measures nothing", observer)
	}
	if o.longest > 150*time.Millisecond || o.poisoned > o.samples/3 {
		t.Errorf("%s's entry pointed at the attacker in %d of %d samples, %v at a stretch; the claims are answered within tens of milliseconds", observer, o.poisoned, o.samples, o.longest)
	}
	if o.last != holderMAC {
		t.Errorf("after the attack %s's entry points at %q, want the holder's %s", observer, o.last, holderMAC)
	}
}

// claimAttack has x claim vip n times from its own MAC, one every period
// (as arpspoof does): gratuitous ARPs for IPv4, unsolicited neighbour
// advertisements with the override flag for IPv6. Meanwhile observer
// pings vip every 10 ms and its neighbour entry for vip is sampled every
// 10 ms; it first waits until that entry points at holderMAC.
func claimAttack(t *testing.T, lab *netlab.Lab, observer string, vip netip.Addr, holderMAC string, n int, period time.Duration) claimOutcome {
	t.Helper()
	prober := StartProber(t, lab, observer, vip, 10*time.Millisecond, 0)
	defer prober.Stop()
	neigh := SampleNeighbour(t, lab, observer, vip)
	defer neigh.Stop()
	Eventually(t, 5*time.Second, "the client's entry for the VIP at "+holderMAC, func() (bool, string) {
		s := neigh.Between(time.Now().Add(-50*time.Millisecond), time.Now())
		if len(s) == 0 {
			return false, "no sample"
		}
		return s[len(s)-1].MAC == holderMAC, s[len(s)-1].MAC
	})
	f := lab.Forger("x", "")
	var frame []byte
	if vip.Is6() {
		frame = netlab.UnsolicitedNA(f.MAC(), netip.MustParseAddr(lab.LinkLocal("x")), vip)
	} else {
		frame = netlab.GratuitousARP(f.MAC(), vip)
	}
	start := time.Now()
	for range n {
		if err := f.SendFrame(frame); err != nil {
			t.Fatal(err)
		}
		time.Sleep(period)
	}
	end := time.Now()
	var o claimOutcome
	samples := neigh.Between(start, end)
	o.samples = len(samples)
	o.poisoned, o.longest = Stretches(samples, f.MAC().String())
	o.last = samples[len(samples)-1].MAC
	for _, p := range prober.Pings(start, end.Add(-100*time.Millisecond)) {
		o.pings++
		if bad(p) {
			o.lost++
		}
	}
	return o
}

// TestClaimedVIP: a host on the segment claims the VIP with gratuitous
// ARPs from its own MAC every 300 ms for 3 s, as arpspoof does. Measured
// where the client feels it: its neighbour entry for the VIP and its
// pings, every 10 ms. The mwgc Active answers every claim within tens of
// milliseconds, so the entry points at the attacker only briefly after
// each claim; it raises the vip-claim alarm naming the attacker's MAC,
// and nothing moves: no transition on either director, no alarm on the
// Backup, which cannot tell claims apart. The control, in the same lab:
// keepalived 2.2.7 as MASTER under the same attack leaves the client at
// the attacker's MAC (so the attack does reach the client).
func TestClaimedVIP(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	netlab.Require(t, "keepalived")
	cl := pair()
	a, b := startPair(t, lab, cl)
	macA, macX := lab.MAC("a"), lab.MAC("x")
	trA, trB := transitions(t, a), transitions(t, b)

	const claims, every = 10, 300 * time.Millisecond
	claimAttack(t, lab, "c", vip4, macA, claims, every).answered(t, "the client (mwgc)", macA)
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

	// The control: keepalived in a's place, the same attack.
	for _, ag := range []*Agent{b, a} {
		ag.Proc.Terminate()
		if err := ag.Proc.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	k := lab.StartKeepalived("a", netlab.KeepalivedConfig{Instances: []netlab.KeepalivedInstance{{
		Name: "VI_51", VRID: 51, Priority: 200, AdvertInterval: 100 * time.Millisecond, VIPs: []string{"192.0.2.100/24"},
	}}})
	if !k.WaitState("VI_51", "MASTER", 1, 5*time.Second) {
		t.Fatalf("keepalived did not become MASTER:\n%s", k.Log())
	}
	kc := claimAttack(t, lab, "c", vip4, macA, claims, every)
	t.Logf("keepalived 2.2.7: the client's entry pointed at the attacker in %d of %d samples, at most %v at a time; %d of %d pings lost",
		kc.poisoned, kc.samples, kc.longest, kc.lost, kc.pings)
	if kc.poisoned < kc.samples/2 {
		t.Errorf("control: under keepalived the client's entry pointed at the attacker in only %d of %d samples; the attack does not reach the client as it should", kc.poisoned, kc.samples)
	}
}

// TestClaimedVIP6: the same for an IPv6 VIP, claimed by unsolicited
// neighbour advertisements with the override flag: answered, alarmed,
// nothing moves.
func TestClaimedVIP6(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	cl.Groups = []Group{{Name: "inside-v6", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv6, VIPs: []string{"2001:db8::100/64"}}}
	cl.SetupAddresses(lab)
	lab.AddAddr("c", "2001:db8::50/64")
	a := StartAgent(t, lab, cl.Plan("a"))
	b := StartAgent(t, lab, cl.Plan("b"))
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 5*time.Second)
	vip6 := netip.MustParseAddr("2001:db8::100")
	trA, trB := transitions(t, a), transitions(t, b)

	const claims, every = 10, 300 * time.Millisecond
	claimAttack(t, lab, "c", vip6, lab.MAC("a"), claims, every).answered(t, "the client (IPv6)", lab.MAC("a"))
	if al := waitAlarm(t, a, "vip-claim", vip6, lab.MAC("x"), 4*time.Second); al.Where != "inside-v6" {
		t.Errorf("a's vip-claim alarm: %+v", al)
	}
	if got := transitions(t, a); got != trA {
		t.Errorf("a made %d transitions under the claims", got-trA)
	}
	if got := transitions(t, b); got != trB {
		t.Errorf("b made %d transitions under the claims", got-trB)
	}
}

// TestClaimFlood: 20,000 gratuitous ARPs per second for 2 s claiming the
// VIP. The Active keeps its advert cadence (no advert later than the
// Backup's Active_Down_Interval), nobody changes state, and its answers,
// counted in the capture, stay within the bound: one per 100 ms, whatever
// arrives — the claims cannot make it an amplifier.
func TestClaimFlood(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, b := startPair(t, lab, cl)
	trA, trB := transitions(t, a), transitions(t, b)
	macA := lab.MAC("a")
	addrA := cl.Director("a").Addr4()
	adverts := lab.Capture("ip src host " + addrA.String() + " and ip proto 112")
	answers := lab.Capture("arp and ether src " + macA)
	f := lab.Forger("x", "")
	frame := netlab.GratuitousARP(f.MAC(), vip4)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	n, err := f.FloodFrames(20000, 2*time.Second, func(int) []byte { return frame })
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	time.Sleep(300 * time.Millisecond)
	ads, err := netlab.DecodeVRRP(adverts.Stop())
	if err != nil {
		t.Fatal(err)
	}
	var during []netlab.VRRPAdvert
	for _, ad := range ads {
		if !ad.Time.Before(start) && ad.Time.Before(end) {
			during = append(during, ad)
		}
	}
	gap, nAds := netlab.MaxGap(during, addrA.String())
	arps, err := netlab.DecodeARP(answers.Stop())
	if err != nil {
		t.Fatal(err)
	}
	garps := 0
	for _, p := range arps {
		if p.Gratuitous && p.SenderIP == vip4.String() && p.EthSrc == macA && !p.Time.Before(start) {
			garps++
		}
	}
	bound := int(end.Add(300*time.Millisecond).Sub(start)/(100*time.Millisecond)) + 2
	t.Logf("%d claims in %v (%.0f/s): the Active sent %d adverts, largest gap %v; it answered with %d ARP frames (bound %d)",
		n, end.Sub(start).Round(time.Millisecond), float64(n)/end.Sub(start).Seconds(), nAds, gap.Round(time.Microsecond), garps, bound)
	if limit := ActiveDownInterval(100, 100*time.Millisecond); gap >= limit {
		t.Errorf("the Active's adverts stopped for %v under the flood (Backup's Active_Down_Interval %v)", gap, limit)
	}
	if garps == 0 || garps > bound {
		t.Errorf("the Active answered %d times; want at least one and at most %d (one per 100 ms)", garps, bound)
	}
	if got := transitions(t, a) + transitions(t, b); got != trA+trB {
		t.Errorf("%d transitions under the flood", got-trA-trB)
	}
	waitAlarm(t, a, "vip-claim", vip4, f.MAC().String(), 4*time.Second)
}

// TestWatchersSurviveLinkFlap: the Active's link goes down and up (it
// enters Fault, the Backup takes over, it comes back and preempts). Its
// watchers' packet sockets then hold the ENETDOWN the kernel left pending;
// they must keep reading: a claim of the VIP afterwards is answered and
// alarmed, and an advert forged with its own address is alarmed.
func TestWatchersSurviveLinkFlap(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, b := startPair(t, lab, cl)
	lab.LinkDown("a")
	waitState(t, b, "Active", 5*time.Second)
	lab.SetLink("a", "eth0", true)
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 5*time.Second)
	// Past the window in which b's last adverts as Active excuse a claim.
	time.Sleep(2 * time.Second)

	f := lab.Forger("x", "")
	if err := f.SendFrame(netlab.GratuitousARP(f.MAC(), vip4)); err != nil {
		t.Fatal(err)
	}
	waitAlarm(t, a, "vip-claim", vip4, f.MAC().String(), 4*time.Second)
	addrA := cl.Director("a").Addr4()
	sendN(t, f, addrA, 3, 20*time.Millisecond, func() []byte { return forgedAdvert(t, addrA, 255, 10) })
	waitAlarm(t, a, "own-address", addrA, f.MAC().String(), 2*time.Second)
}

// TestClaimedOwnAddress: a host claims the Active director's own address
// (arpspoof against its peer: unicast adverts and management answers to
// the director would go to the attacker). The director answers every
// claim with an announcement of its address and raises the own-address
// alarm naming the claimer; the peer b, pinging the director's address
// and sampled every 10 ms, points at the attacker only briefly.
func TestClaimedOwnAddress(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, b := startPair(t, lab, cl)
	addrA := cl.Director("a").Addr4()
	trA, trB := transitions(t, a), transitions(t, b)
	claimAttack(t, lab, "b", addrA, lab.MAC("a"), 10, 300*time.Millisecond).answered(t, "b", lab.MAC("a"))
	if al := waitAlarm(t, a, "own-address", addrA, lab.MAC("x"), 2*time.Second); al.Reason != "arp-request" || al.Where != "eth0" {
		t.Errorf("a's own-address alarm: %+v", al)
	}
	if got := transitions(t, a) + transitions(t, b); got != trA+trB {
		t.Errorf("%d transitions under the claims", got-trA-trB)
	}
}
