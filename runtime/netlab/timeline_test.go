package netlab

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ads := []VRRPAdvert{
		{Time: at(0), Src: "a", Priority: 200},
		{Time: at(100), Src: "a", Priority: 200},
		{Time: at(250), Src: "a", Priority: 200},
		{Time: at(300), Src: "a", Priority: 0},
		{Time: at(301), Src: "b", Priority: 0}, // b's own shutdown noise is not a takeover
		{Time: at(340), Src: "b", Priority: 100},
		{Time: at(440), Src: "b", Priority: 100},
	}
	last, first, err := Handover(ads, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Time.Sub(last.Time); got != 40*time.Millisecond {
		t.Errorf("handover gap %v, want 40ms", got)
	}
	if _, _, err := Handover(ads, "b", "a"); err == nil {
		t.Error("Handover b->a found, but a never advertised after b")
	}
	if _, _, err := Handover(ads, "c", "a"); err == nil {
		t.Error("Handover from silent c found")
	}
	if gap, n := MaxGap(ads, "a"); gap != 150*time.Millisecond || n != 4 {
		t.Errorf("MaxGap(a) = %v, %d; want 150ms, 4", gap, n)
	}
	if diff := cmp.Diff([]string{"a", "b"}, Sources(ads, true)); diff != "" {
		t.Errorf("Sources (-want +got):\n%s", diff)
	}
}

func TestEpoch(t *testing.T) {
	got := epoch("1700000000.000123456")
	if want := time.Unix(1700000000, 123456); !got.Equal(want) {
		t.Errorf("epoch = %v, want %v", got, want)
	}
	if got := epoch("1700000000.5"); !got.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("epoch(.5) = %v", got)
	}
}
