package engine

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var all = []string{"dir-a", "dir-b", "scan-1", "scan-2", "scan-3"}

func allUp() map[string]Status {
	m := map[string]Status{}
	for _, n := range all {
		m[n] = StatusUp
	}
	return m
}

func TestDiscoveryFillsTableAtOnce(t *testing.T) {
	s := newSim(t, all...)
	s.step(addrOf("dir-a"), SetActive{Active: true})
	// Answers to a new director go out at once (no jitter source here).
	if diff := cmp.Diff(allUp(), s.status("dir-a")); diff != "" {
		t.Errorf("dir-a's table right after becoming Active (-want +got):\n%s", diff)
	}
	s.run(10 * interval)
	if diff := cmp.Diff(allUp(), s.status("dir-a")); diff != "" {
		t.Errorf("dir-a's table after 10 intervals (-want +got):\n%s", diff)
	}
	for _, n := range all {
		if got := s.status("dir-b")[n]; got != StatusUnseen {
			t.Errorf("backup dir-b's table has %s %s, want unseen", n, got)
		}
	}
	// One discovery per interval, one answer per interval from each of 4 nodes.
	st := s.engine("dir-a").Stats()
	if st.DiscoveriesSent != 11 || st.AnswersReceived < 40 || st.AnswersReceived > 44 {
		t.Errorf("dir-a stats %+v: want 11 discoveries and 40..44 answers in 10 intervals", st)
	}
	if drops := s.grep("dropped"); len(drops) != 0 {
		t.Errorf("drops in a healthy cluster: %q", drops)
	}
	r := s.row("dir-a", "scan-2")
	want := Node{
		Name: "scan-2", Address: addrOf("scan-2"), Status: StatusUp, Since: t0, FirstSeen: t0, LastSeen: t0.Add(10 * interval),
		Health: "available", Digest: "sha256:d1" + strings.Repeat("00", 31),
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.22/24")}, BootID: "0000000000000067",
	}
	if diff := cmp.Diff(want, r, cmpAddr); diff != "" {
		t.Errorf("row of scan-2 (-want +got):\n%s", diff)
	}
}

func TestJitteredFirstAnswerWithinQuarterInterval(t *testing.T) {
	s := newSim(t, "dir-a")
	for i, n := range []string{"scan-1", "scan-2", "scan-3", "dir-b"} {
		e, err := New(testConfig(n), uint64(200+i), rand.New(rand.NewPCG(1, uint64(i))))
		if err != nil {
			t.Fatal(err)
		}
		s.nodes[addrOf(n)] = e
	}
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(interval / 4)
	if diff := cmp.Diff(allUp(), s.status("dir-a")); diff != "" {
		t.Errorf("table a quarter interval after becoming Active (-want +got):\n%s", diff)
	}
}

func TestScannerDownAfterDeadAfterAndUpAfterRestart(t *testing.T) {
	s := newSim(t, all...)
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(5*interval + interval/2)
	// scan-2 dies; its last answer went out at 5s.
	delete(s.nodes, addrOf("scan-2"))
	s.run(8*interval - time.Millisecond)
	if got := s.status("dir-a")["scan-2"]; got != StatusUp {
		t.Errorf("scan-2 %s just before DeadAfter intervals passed, want up", got)
	}
	s.run(8 * interval)
	if got := s.status("dir-a")["scan-2"]; got != StatusDown {
		t.Fatalf("scan-2 %s after DeadAfter intervals, want down", got)
	}
	// Restart with a new boot id, so sequence numbers start again at 1.
	s.nodes[addrOf("scan-2")] = newEngine(t, "scan-2", 999)
	s.run(12*interval + interval/2)
	r := s.row("dir-a", "scan-2")
	if r.Status != StatusUp || r.Restarts != 1 || r.Since != t0.Add(9*interval) || r.FirstSeen != t0 {
		t.Errorf("scan-2 after restart: %+v; want up since 9s, first seen at 0, 1 restart", r)
	}
	changes := s.grep("scan-2 ")
	wantChanges := []string{"0s dir-a: scan-2 unseen->up", "8s dir-a: scan-2 up->down", "9s dir-a: scan-2 down->up"}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("scan-2 changes (-want +got):\n%s", diff)
	}
	if drops := s.grep("dropped"); len(drops) != 0 {
		t.Errorf("drops: %q", drops)
	}
}

func TestFailoverNewActiveDiscoversAtOnce(t *testing.T) {
	s := newSim(t, all...)
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(3 * interval)
	delete(s.nodes, addrOf("dir-a")) // crashed
	s.now = t0.Add(3*interval + 300*time.Millisecond)
	s.step(addrOf("dir-b"), SetActive{Active: true})
	want := allUp()
	want["dir-a"] = StatusUnseen
	if diff := cmp.Diff(want, s.status("dir-b")); diff != "" {
		t.Errorf("dir-b's table at takeover (-want +got):\n%s", diff)
	}
	s.run(10 * interval)
	if diff := cmp.Diff(want, s.status("dir-b")); diff != "" {
		t.Errorf("dir-b's table later (-want +got):\n%s", diff)
	}
	// Scanners stop answering the dead director after DeadAfter intervals.
	if got := s.grep("lost dir-a"); len(got) != 4 {
		t.Errorf("nodes that stopped answering dir-a: %q, want all 4", got)
	}
	if got := s.engine("scan-1").Directors(); !cmp.Equal(got, []string{"dir-b"}) {
		t.Errorf("scan-1 answers %v, want [dir-b]", got)
	}
}

func TestStepDownClearsTableAndStopsDiscovery(t *testing.T) {
	s := newSim(t, all...)
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(2 * interval)
	s.step(addrOf("dir-a"), SetActive{Active: false})
	sentBefore := s.engine("dir-a").Stats().DiscoveriesSent
	s.run(10 * interval)
	if got := s.engine("dir-a").Stats().DiscoveriesSent; got != sentBefore {
		t.Errorf("discoveries sent while Backup: %d", got-sentBefore)
	}
	for n, st := range s.status("dir-a") {
		if st != StatusUnseen {
			t.Errorf("%s is %s in a Backup's table", n, st)
		}
	}
	// The answers that still reach it until the nodes give up are counted.
	if got := s.engine("dir-a").Stats().Drops[DropNotActive]; got == 0 {
		t.Errorf("no not-active drops for answers after stepping down")
	}
}

func TestLeavingNodeGoesDownAtOnce(t *testing.T) {
	s := newSim(t, all...)
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(2*interval + 100*time.Millisecond)
	s.step(addrOf("scan-3"), Shutdown{})
	r := s.row("dir-a", "scan-3")
	if r.Status != StatusDown || r.Health != "leaving" || r.Since != s.now {
		t.Errorf("scan-3 after shutdown: %+v", r)
	}
	if d := s.engine("scan-3").Deadline(); !d.IsZero() {
		t.Errorf("a shut down engine still has a deadline %v", d)
	}
}

func TestTableChangedOncePerIntervalWhenOnlyLastSeenMoves(t *testing.T) {
	e := newEngine(t, "dir-a", 1)
	scan := newEngine(t, "scan-1", 2)
	now := t0
	var changes int
	count := func(acts []Action) {
		for _, a := range acts {
			if _, ok := a.(TableChanged); ok {
				changes++
			}
		}
	}
	deliver := func(acts []Action, to *Engine, src string) []Action {
		var out []Action
		for _, a := range acts {
			if s, ok := a.(Send); ok {
				out = append(out, to.Step(now, Packet{Src: addrOf(src), Data: s.Data})...)
			}
		}
		return out
	}
	acts := e.Step(now, SetActive{Active: true})
	count(acts)
	count(deliver(deliver(acts, scan, "dir-a"), e, "scan-1"))
	if changes != 2 { // becoming Active, scan-1 up
		t.Fatalf("%d TableChanged after the first answer, want 2", changes)
	}
	for i := 1; i <= 5; i++ {
		now = t0.Add(time.Duration(i) * interval)
		count(deliver(scan.Step(now, Tick{}), e, "scan-1")) // answer only: no change
		disc := e.Step(now, Tick{})                         // discovery: last-seen refresh
		count(disc)
		count(deliver(deliver(disc, scan, "dir-a"), e, "scan-1")) // a known director: no extra answer
	}
	if changes != 2+5 {
		t.Errorf("%d TableChanged, want 7 (2 + one per interval)", changes)
	}
}

func TestReconfigure(t *testing.T) {
	s := newSim(t, all...)
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(2 * interval)
	// Remove scan-3 from the plan and rotate the key: the new key signs, the old one still verifies.
	newKey := make([]byte, 32)
	cfg := testConfig("dir-a")
	cfg.Members = testMembers[:4]
	cfg.Keys = [][]byte{newKey, testKey}
	s.step(addrOf("dir-a"), Reconfigure{Config: cfg})
	if !s.engine("dir-a").Active() {
		t.Fatal("reconfigure left the Active state")
	}
	want := allUp()
	delete(want, "scan-3")
	s.run(5 * interval)
	if diff := cmp.Diff(want, s.status("dir-a")); diff != "" {
		t.Errorf("table after reconfigure (-want +got):\n%s", diff)
	}
	// scan-3 is a stranger now; the scanners drop discovery signed with the new key.
	if got := s.engine("dir-a").Stats().Drops[DropUnknownSource]; got == 0 {
		t.Error("answers of the removed member were not dropped as unknown-source")
	}
	if got := s.engine("scan-1").Stats().Drops[DropAuth]; got == 0 {
		t.Error("scan-1 accepted discovery signed with a key it does not have")
	}
	// An invalid config changes nothing.
	bad := testConfig("dir-a")
	bad.Interval = 0
	s.step(addrOf("dir-a"), Reconfigure{Config: bad})
	if s.engine("dir-a").cfg.Interval != interval {
		t.Error("an invalid Reconfigure was applied")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := map[string]func(c *Config){
		"short key":        func(c *Config) { c.Keys = [][]byte{make([]byte, 31)} },
		"interval":         func(c *Config) { c.Interval = 50 * time.Millisecond },
		"deadAfter":        func(c *Config) { c.DeadAfter = 1 },
		"self not member":  func(c *Config) { c.Node = "nobody" },
		"duplicate member": func(c *Config) { c.Members = append(c.Members, testMembers[2]) },
		"ipv6 address":     func(c *Config) { c.Address = netip.MustParseAddr("2001:db8::1") },
	}
	for name, mod := range tests {
		c := testConfig("dir-a")
		c.Members = append([]Member(nil), c.Members...)
		mod(&c)
		if _, err := New(c, 1, nil); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	if _, err := New(testConfig("dir-a"), 0, nil); err == nil {
		t.Error("New accepted boot id 0")
	}
}

var cmpAddr = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})
