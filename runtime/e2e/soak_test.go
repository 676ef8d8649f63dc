package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestChurnSoakShort is `make soak` in small: 50 forced failovers of every
// kind at 50 ms adverts, judged by the observer (address listings every
// 10 ms, the capture, a pinging client), not by the agents: no two VIP
// holders for longer than Active_Down_Interval once the cause is gone, no
// stale VIP after the agents stop, no client blackhole after the election
// settles. Splits come about a second apart here, so the re-announcement
// holdoff is 250 ms (with the default 1 s, the observer sees the bound
// against forged adverts hold back the next split's re-announcement).
func TestChurnSoakShort(t *testing.T) {
	r := RunSoak(t, SoakConfig{Events: 50, Interval: 100 * time.Millisecond, Seed: 1, VirtualMAC: true, Holdoff: 250 * time.Millisecond,
		Timing: Timing{Partition: time.Second, Pause: time.Second, Restart: 200 * time.Millisecond, Margin: 200 * time.Millisecond}})
	var b strings.Builder
	r.Print(&b)
	t.Log("\n" + b.String())
	for _, k := range FaultKinds {
		if r.Events[k] == 0 {
			t.Errorf("no %s among the events", k)
		}
	}
	if !r.OK() {
		t.Error("the soak found violations (above)")
	}
}
