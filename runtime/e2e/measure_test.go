package e2e

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

func TestHandoverGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ads := []netlab.VRRPAdvert{
		{Time: at(0), Src: "A", VRID: 5, Priority: 200},
		{Time: at(100), Src: "A", VRID: 5, Priority: 200},
		{Time: at(150), Src: "X", VRID: 6, Priority: 100}, // another group
		{Time: at(462), Src: "B", VRID: 5, Priority: 100},
		{Time: at(900), Src: "A", VRID: 5, Priority: 0},
		{Time: at(962), Src: "B", VRID: 5, Priority: 100},
	}
	tests := []struct {
		name      string
		from, to  int
		graceful  bool
		want      time.Duration
		wantError bool
	}{
		{"crash", 0, 800, false, 362 * time.Millisecond, false},
		{"graceful", 800, 1000, true, 62 * time.Millisecond, false},
		{"no priority 0 in window", 0, 800, true, 0, true},
		{"new never advertises", 0, 300, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HandoverGap(ads, 5, "A", "B", at(tt.from), at(tt.to), tt.graceful)
			if (err != nil) != tt.wantError {
				t.Fatalf("err = %v, want error %v", err, tt.wantError)
			}
			if got != tt.want {
				t.Errorf("gap = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHandoverOverhead: the protocol's own wait for a Backup of priority
// 100 at 100 ms (Active_Down_Interval 360.94 ms, Skew_Time 60.94 ms) comes
// off the gaps of TestHandoverGap's adverts.
func TestHandoverOverhead(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ads := []netlab.VRRPAdvert{
		{Time: at(100), Src: "A", VRID: 5, Priority: 200},
		{Time: at(462), Src: "B", VRID: 5, Priority: 100},
		{Time: at(900), Src: "A", VRID: 5, Priority: 0},
		{Time: at(962), Src: "B", VRID: 5, Priority: 100},
	}
	for _, tt := range []struct {
		graceful bool
		from, to int
		want     time.Duration
	}{
		{false, 0, 800, 1062500 * time.Nanosecond},
		{true, 800, 1000, 1062500 * time.Nanosecond},
	} {
		got, err := HandoverOverhead(ads, 5, "A", "B", at(tt.from), at(tt.to), tt.graceful, 100, 100*time.Millisecond)
		if err != nil || got != tt.want {
			t.Errorf("graceful=%v: overhead %v, %v; want %v", tt.graceful, got, err, tt.want)
		}
	}
	if _, err := HandoverOverhead(ads, 5, "A", "B", at(0), at(300), false, 100, 100*time.Millisecond); err == nil {
		t.Error("no handover in the window, but no error")
	}
}

func TestTimersAndProc(t *testing.T) {
	if got := ActiveDownInterval(100, 100*time.Millisecond); got != 360937500*time.Nanosecond {
		t.Errorf("Active_Down_Interval(100, 100ms) = %v", got)
	}
	if got := SkewTime(150, 100*time.Millisecond); got != 41406250*time.Nanosecond {
		t.Errorf("Skew_Time(150, 100ms) = %v", got)
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Errorf("RSS of the test = %d, %v", rss, err)
	}
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Error(err)
	}
	// A process that spins for the whole measurement uses a visible share
	// of a core (how much depends on what else runs), never more than all.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	share, err := CPUShare(200*time.Millisecond, os.Getpid())
	close(stop)
	if err != nil || share < 0.05 || share > float64(runtime.NumCPU())+0.5 {
		t.Errorf("CPUShare of a spinning test = %.2f, %v; want between a twentieth of a core and all %d", share, err, runtime.NumCPU())
	}
}

func TestSettled(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ad := func(ms int, src string, prio int) netlab.VRRPAdvert {
		return netlab.VRRPAdvert{Time: at(ms), Src: src, VRID: 7, Priority: prio}
	}
	for _, c := range []struct {
		name     string
		ads      []netlab.VRRPAdvert
		from, to int
		want     int
	}{
		{"takeover after a crash", []netlab.VRRPAdvert{ad(0, "a", 200), ad(100, "a", 200), ad(461, "b", 100), ad(561, "b", 100)}, 50, 1000, 461},
		{"the Active fell silent just before the window", []netlab.VRRPAdvert{ad(0, "a", 200), ad(361, "b", 100), ad(461, "b", 100)}, 50, 1000, 361},
		{"a healed split: the loser's last advert", []netlab.VRRPAdvert{ad(0, "a", 200), ad(10, "b", 100), ad(100, "a", 200), ad(105, "b", 100), ad(106, "a", 200), ad(200, "a", 200)}, 0, 1000, 106},
		{"graceful: priority 0 then the new Active", []netlab.VRRPAdvert{ad(0, "a", 200), ad(50, "a", 0), ad(111, "b", 100)}, 40, 1000, 111},
		{"nothing moved", []netlab.VRRPAdvert{ad(0, "a", 200), ad(100, "a", 200), ad(200, "a", 200)}, 150, 1000, 150},
		{"another VRID is ignored", []netlab.VRRPAdvert{ad(0, "a", 200), {Time: at(300), Src: "x", VRID: 9, Priority: 250}, ad(400, "a", 200)}, 100, 1000, 100},
	} {
		if got := Settled(c.ads, 7, at(c.from), at(c.to)); !got.Equal(at(c.want)) {
			t.Errorf("%s: settled at %v, want %v", c.name, got.Sub(t0), at(c.want).Sub(t0))
		}
	}
}

func TestOutageAndReached(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	probe := func(sent, answered int) Probe {
		p := Probe{Sent: at(sent)}
		if answered >= 0 {
			p.Answered = at(answered)
		}
		return p
	}
	ok := []Probe{probe(0, 1), probe(10, 11), probe(20, 21)}
	if o := Outage(ok, at(30)); o != 0 {
		t.Errorf("no loss: outage %v", o)
	}
	lost := []Probe{probe(0, 1), probe(10, -1), probe(20, -1), probe(30, 31), probe(40, 41)}
	if o := Outage(lost, at(50)); o != 21*time.Millisecond {
		t.Errorf("two lost: outage %v, want 21ms (first lost sent to the next answer)", o)
	}
	late := []Probe{probe(0, 1), probe(10, 90), probe(20, 91), probe(30, 31)}
	if o := Outage(late, at(40)); o != 21*time.Millisecond {
		t.Errorf("answers held back 80ms count as lost: outage %v, want 21ms", o)
	}
	stillLost := []Probe{probe(0, 1), probe(10, -1), probe(20, -1)}
	if o := Outage(stillLost, at(100)); o != 90*time.Millisecond {
		t.Errorf("lost to the end: outage %v, want to the end of the window", o)
	}
	if d, ok := ReachedAfter(lost, at(5)); !ok || d != 26*time.Millisecond {
		t.Errorf("reached %v %v, want 26ms after", d, ok)
	}
	if _, ok := ReachedAfter(stillLost, at(5)); ok {
		t.Error("reached although the last probes were lost")
	}
	if d, ok := ReachedAfter(ok, at(5)); !ok || d != 0 {
		t.Errorf("no loss: reached %v %v, want 0", d, ok)
	}
	if !LostAfter(lost, at(15)) || LostAfter(lost, at(25)) {
		t.Error("LostAfter: a probe lost at 20ms is after 15ms and not after 25ms")
	}
}
