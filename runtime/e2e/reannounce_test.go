package e2e

import (
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// TestReannounceIsNoAmplifier: a host on the segment floods the Active
// with lower-priority adverts in the Backup's name (no authentication:
// anyone can), each of which is a reason to re-announce. Counted on the
// wire, not by the agent: the Active re-announces (the defence works) but
// sends no more gratuitous ARPs than docs/failover.md's bound, 2 × (1 +
// T/holdoff) × count × VIPs over a span T, and no more adverts than its
// cadence plus four answers per interval; nobody changes state and the
// client finds the VIP at the Active throughout.
func TestReannounceIsNoAmplifier(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, b := startPair(t, lab, cl)
	addrA, addrB := cl.Director("a").Addr4(), cl.Director("b").Addr4()
	macA := lab.MAC("a")
	time.Sleep(500 * time.Millisecond) // the takeover's own announcements are over
	trA, trB := transitions(t, a), transitions(t, b)
	capture := lab.Capture("arp or ip proto 112")
	holder := SampleHolder(t, lab, "c", vip4)
	f := lab.Forger("x", "")

	const rate, floodFor = 2000, 3 * time.Second
	forged := forgedAdvert(t, addrB, 50, 10) // below b's planned 100: believed, and a reason to re-announce
	start := time.Now()
	n, err := f.Flood(addrB, rate, floodFor, func(int) []byte { return forged })
	if err != nil {
		t.Fatal(err)
	}
	floodEnd := time.Now()
	ra := plan.DefaultReannounce
	time.Sleep(ra.Holdoff.D() + 300*time.Millisecond) // the burst held off to the holdoff's end
	end := time.Now()
	pcap := capture.Stop()

	arps, err := netlab.DecodeARP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	garps := 0
	for _, p := range arps {
		if p.Gratuitous && p.SenderIP == vip4.String() && p.EthSrc == macA && !p.Time.Before(start) && !p.Time.After(end) {
			garps++
		}
	}
	ads, err := netlab.DecodeVRRP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	adverts := 0
	for _, ad := range ads {
		if ad.Src == addrA.String() && !ad.Time.Before(start) && !ad.Time.After(floodEnd) {
			adverts++
		}
	}
	span := end.Sub(start)
	vips := len(cl.Groups[0].VIPs)
	garpBound := 2 * (1 + int(span/ra.Holdoff.D())) * ra.Count * vips
	interval := 100 * time.Millisecond
	advertBound := (int(floodEnd.Sub(start)/interval) + 1) * (1 + 4)
	t.Logf("%d forged lower-priority adverts in %v: a sent %d gratuitous ARPs in %v (bound %d) and %d adverts during the flood (bound %d)",
		n, floodEnd.Sub(start).Round(time.Millisecond), garps, span.Round(time.Millisecond), garpBound, adverts, advertBound)

	if garps < ra.Count*vips {
		t.Errorf("a re-announced %d times under adverts of lower priority, want at least one burst of %d", garps, ra.Count*vips)
	}
	if garps > garpBound {
		t.Errorf("a sent %d gratuitous ARPs for %d forged adverts: more than the bound %d", garps, n, garpBound)
	}
	if adverts > advertBound {
		t.Errorf("a sent %d adverts in %v of flood: more than its cadence plus four answers per interval (%d)", adverts, floodEnd.Sub(start), advertBound)
	}
	if got := transitions(t, a) + transitions(t, b); got != trA+trB {
		t.Errorf("%d transitions under the flood", got-trA-trB)
	}
	if err := HeldOnlyBy(holder.Since(start), macA, 5); err != nil {
		t.Errorf("the VIP moved: %v", err)
	}
}
