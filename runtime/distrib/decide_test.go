package distrib

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func good(name, m string) Observation {
	return Observation{Name: name, Up: true, Reported: true, Serving: true, MAC: mac(m)}
}

func TestDecideReasons(t *testing.T) {
	cfg := Config{Mode: ModeL2, Slots: 256, DirectorsScan: true, Self: "dir-a"}
	obs := []Observation{
		{Name: "dir-a", Director: true, Up: true, Reported: true, Serving: true}, // self: no MAC needed
		good("ok", "02:00:00:00:00:01"),
		{Name: "down", Reported: true, Serving: true, MAC: mac("02:00:00:00:00:02")},
		{Name: "leaving", Up: true, Leaving: true, Reported: true, Serving: true, MAC: mac("02:00:00:00:00:03")},
		{Name: "v1", Up: true},
		{Name: "closed", Up: true, Reported: true, MAC: mac("02:00:00:00:00:04")},
		{Name: "nomac", Up: true, Reported: true, Serving: true},
		good("zero", "00:00:00:00:00:00"),
		good("mcast", "01:00:5e:00:00:01"),
		good("bcast", "ff:ff:ff:ff:ff:ff"),
		good("dup1", "02:00:00:00:00:09"),
		good("dup2", "02:00:00:00:00:09"),
		{Name: "liar", Up: true, Reported: true, Serving: true, MAC: mac("02:00:00:00:00:0a"), NeighborMAC: mac("02:00:00:00:00:0b")},
		{Name: "checked", Up: true, Reported: true, Serving: true, MAC: mac("02:00:00:00:00:0c"), NeighborMAC: mac("02:00:00:00:00:0c")},
	}
	d := Decide(cfg, obs, nil)
	got := map[string]string{}
	for _, s := range d.Shares {
		got[s.Name] = s.Reason
		if s.Eligible != (s.Reason == "") {
			t.Errorf("%s: eligible %v with reason %q", s.Name, s.Eligible, s.Reason)
		}
		if !s.Eligible && s.Slots != 0 {
			t.Errorf("%s: not eligible but %d slots", s.Name, s.Slots)
		}
	}
	want := map[string]string{
		"dir-a": "", "ok": "", "checked": "", "down": ReasonDown, "leaving": ReasonLeaving, "v1": ReasonNoReport,
		"closed": ReasonProxyClosed, "nomac": ReasonNoMAC, "zero": ReasonBadMAC, "mcast": ReasonBadMAC,
		"bcast": ReasonBadMAC, "dup1": ReasonMACDuplicate, "dup2": ReasonMACDuplicate, "liar": ReasonMACMismatch,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("reasons (-want +got):\n%s", diff)
	}
	if c := d.Table.Counts(); len(c) != 3 || c["dir-a"]+c["ok"]+c["checked"] != 256 {
		t.Fatalf("table over %v", c)
	}

	// nat needs no MAC; directors can be left out.
	cfg = Config{Mode: ModeNAT, Slots: 64, DirectorsScan: false, Self: "dir-a"}
	d = Decide(cfg, []Observation{obs[0], obs[6]}, nil)
	if d.Shares[0].Reason != ReasonDirector || !d.Shares[1].Eligible {
		t.Fatalf("nat: %+v", d.Shares)
	}
}

func TestLoadWeight(t *testing.T) {
	for _, c := range []struct {
		load       uint16
		prev, want int
	}{
		{0, 0, 4}, {249, 0, 4}, {250, 0, 3}, {499, 0, 3}, {500, 0, 2}, {999, 0, 2}, {1000, 0, 1}, {65535, 0, 1},
		{290, 4, 4}, {300, 4, 3}, // hysteresis above a bound
		{210, 3, 3}, {199, 3, 4}, // and below
		{960, 1, 1}, {949, 1, 2},
		{100, 9, 4}, // nonsense prev is ignored
	} {
		if got := LoadWeight(c.load, c.prev); got != c.want {
			t.Errorf("LoadWeight(%d, prev %d) = %d, want %d", c.load, c.prev, got, c.want)
		}
	}
	cfg := Config{Mode: ModeNAT, Slots: 4096, DirectorsScan: true, LoadWeighting: true}
	d := Decide(cfg, []Observation{
		{Name: "idle", Up: true, Reported: true, Serving: true, Load: 100},
		{Name: "busy", Up: true, Reported: true, Serving: true, Load: 2000},
	}, nil)
	if d.Shares[0].Name != "busy" || d.Shares[0].Weight != 1 || d.Shares[1].Weight != 4 || d.Shares[1].Slots < 3*d.Shares[0].Slots {
		t.Fatalf("load weighting: %+v", d.Shares)
	}
}

func TestHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	if got := HoldUntil(t0, time.Second).Sub(t0); got != 350*time.Millisecond {
		t.Errorf("hold after 1s interval: %v", got)
	}
	if got := HoldUntil(t0, 100*time.Millisecond).Sub(t0); got != 45*time.Millisecond {
		t.Errorf("hold after 100ms interval: %v", got)
	}
	obs := []Observation{{Name: "self"}, {Name: "a", Up: true}, {Name: "b", Leaving: true}}
	if !AllHeard(obs, "self") {
		t.Error("all heard")
	}
	obs = append(obs, Observation{Name: "c"})
	if AllHeard(obs, "self") {
		t.Error("c not heard yet")
	}
}

// TestSpreadHundredClients states the spread the namespace test measures:
// 100 clients at consecutive addresses over 4 nodes. A hash spreads like
// dice, so the ratio is that of 100 throws, not of the table.
func TestSpreadHundredClients(t *testing.T) {
	tb := Build(names(4), DefaultSlots)
	seed := Seed("distribution")
	count := map[string]int{}
	for i := range 100 {
		count[ClientNode(tb, netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), seed)]++
	}
	lo, hi := 100, 0
	for _, c := range count {
		lo, hi = min(lo, c), max(hi, c)
	}
	t.Logf("100 clients over 4 nodes: %v, max/min %.2f", count, float64(hi)/float64(lo))
	if len(count) != 4 || lo == 0 {
		t.Fatalf("a node got no client: %v", count)
	}
	// The same over 1,000 seeds (cluster names): what to expect in general.
	var ratios []float64
	for k := range 1000 {
		seed := Seed(fmt.Sprintf("cluster-%d", k))
		count := map[string]int{}
		for i := range 100 {
			count[ClientNode(tb, netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), seed)]++
		}
		lo, hi := 100, 0
		for _, b := range tb.Backends {
			lo, hi = min(lo, count[b.Name]), max(hi, count[b.Name])
		}
		ratios = append(ratios, float64(hi)/float64(max(lo, 1)))
	}
	slices.Sort(ratios)
	within := 0
	for _, r := range ratios {
		if r <= 1.3 {
			within++
		}
	}
	t.Logf("over 1,000 seeds: median max/min %.2f, 90th percentile %.2f, %.0f%% within 1.3", ratios[500], ratios[900], float64(within)/10)
	if ratios[500] > 2 {
		t.Errorf("median ratio %.2f: worse than dice", ratios[500])
	}
}
