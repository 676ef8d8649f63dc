package e2e

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// floodPayloads is one half of the flood: forged adverts in the Backup's name
// whose trailer is either stale (dropped before any HMAC) or fresh with a
// bad MAC (one HMAC each).
func floodPayloads(msg []byte, stale bool) func(i int) []byte {
	var tr auth.Trailer
	tr.Type, tr.KeyID = auth.TypeHMACSHA256, 1
	buf := make([]byte, 0, len(msg)+auth.TrailerLen)
	return func(i int) []byte {
		at := time.Now()
		if stale {
			at = at.Add(-time.Hour)
		}
		tr.Seq = auth.SeqAt(at) + auth.Seq(i)
		rand.Read(tr.MAC[:])
		return tr.Append(append(buf[:0], msg...))
	}
}

// TestAuthFlood: 20,000 forged adverts per second for 3 s in the Backup's
// name against an Active with authentication enforced — 1.5 s with stale
// timestamps, then 1.5 s fresh with bad MACs. The Active keeps its advert
// cadence (largest gap reported beside a control window without flood in
// the same run), nobody changes state, the client always finds the VIP at
// the Active, and the drops are counted under their reasons.
func TestAuthFlood(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	key := lab.Dir() + "/vrrp-1.key"
	writeKeyFile(t, key)
	cl := pair()
	cl.Auth = &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: key}}, ActiveKey: 1}
	a, b := startPair(t, lab, cl)
	trA, trB := transitions(t, a), transitions(t, b)
	addrA, addrB := cl.Director("a").Addr4(), cl.Director("b").Addr4()
	capture := lab.Capture("ip src host " + addrA.String() + " and ip proto 112")
	holder := SampleHolder(t, lab, "c", vip4)
	f := lab.Forger("x", "")
	msg := forgedAdvert(t, addrB, 255, 10)

	time.Sleep(1500 * time.Millisecond) // control window: no flood
	floodStart := time.Now()
	stale := floodPayloads(msg, true)
	n1, err := f.Flood(addrB, 20000, 1500*time.Millisecond, stale)
	if err != nil {
		t.Fatal(err)
	}
	fresh := floodPayloads(msg, false)
	n2, err := f.Flood(addrB, 20000, 1500*time.Millisecond, fresh)
	if err != nil {
		t.Fatal(err)
	}
	floodEnd := time.Now()
	time.Sleep(300 * time.Millisecond)
	ads, err := netlab.DecodeVRRP(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	var control, flood []netlab.VRRPAdvert
	for _, ad := range ads {
		switch {
		case ad.Time.Before(floodStart):
			control = append(control, ad)
		case ad.Time.Before(floodEnd):
			flood = append(flood, ad)
		}
	}
	gapControl, _ := netlab.MaxGap(control, addrA.String())
	gapFlood, nFlood := netlab.MaxGap(flood, addrA.String())
	interval := 100 * time.Millisecond
	t.Logf("flood: %d stale + %d bad-MAC adverts in %v (%.0f/s); the Active sent %d adverts meanwhile, largest gap %v (control without flood: %v; goal interval + 5ms = %v)",
		n1, n2, floodEnd.Sub(floodStart).Round(time.Millisecond), float64(n1+n2)/floodEnd.Sub(floodStart).Seconds(),
		nFlood, gapFlood.Round(time.Microsecond), gapControl.Round(time.Microsecond), interval+5*time.Millisecond)
	// The goal (interval + 5 ms) is reported, not asserted: on the shared
	// 2-core machine the flood's sender and the bridge's copies compete
	// with the agent for the CPU. What must hold is that no advert is so
	// late that the Backup could take over.
	if bound := ActiveDownInterval(100, interval); gapFlood >= bound {
		t.Errorf("the Active's adverts stopped for %v under the flood (Backup's Active_Down_Interval %v; control %v)", gapFlood, bound, gapControl)
	}
	stales, _ := a.Metric(`mwgc_agent_drops_total{group="inside-v4",reason="auth-stale"}`)
	bad, _ := a.Metric(`mwgc_agent_drops_total{group="inside-v4",reason="auth-bad-mac"}`)
	t.Logf("a dropped %v as auth-stale and %v as auth-bad-mac", stales, bad)
	if stales < float64(n1)/2 || bad < float64(n2)/2 {
		t.Errorf("drops not counted: stale %v of %d, bad MAC %v of %d", stales, n1, bad, n2)
	}
	if got := transitions(t, a) + transitions(t, b); got != trA+trB {
		t.Errorf("%d transitions under the flood", got-trA-trB)
	}
	if err := HeldOnlyBy(holder.Since(floodStart), lab.MAC("a"), 5); err != nil {
		t.Errorf("the VIP moved: %v", err)
	}
}
