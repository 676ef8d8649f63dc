package e2e

import (
	"os"
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
}
