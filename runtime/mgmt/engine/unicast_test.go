package engine

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

// unicastSim is newSim on a segment without broadcast: every node runs
// unicast discovery and has no broadcast address.
func unicastSim(t *testing.T, names ...string) *sim {
	s := &sim{t: t, now: t0, nodes: map[netip.Addr]*Engine{}}
	for i, n := range names {
		cfg := testConfig(n)
		cfg.UnicastDiscovery, cfg.Broadcast = true, netip.Addr{}
		e, err := New(cfg, uint64(100+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.nodes[addrOf(n)] = e
	}
	return s
}

// TestUnicastDiscovery: the Active sends each discovery to every other
// member (one message, one sequence number), every node answers as on
// broadcast, and the table fills at once; nothing goes to a broadcast
// address.
func TestUnicastDiscovery(t *testing.T) {
	s := unicastSim(t, all...)
	var discoveries []Send
	s.tap = func(from netip.Addr, m Send) {
		if m.To == netip.MustParseAddr("192.0.2.255") || !m.To.IsValid() {
			t.Errorf("%v sent to %v", from, m.To)
		}
		if m.Type == wire.TypeDiscovery {
			discoveries = append(discoveries, m)
		}
	}
	s.step(addrOf("dir-a"), SetActive{Active: true})
	if diff := cmp.Diff(allUp(), s.status("dir-a")); diff != "" {
		t.Errorf("dir-a's table right after becoming Active (-want +got):\n%s", diff)
	}
	var to []netip.Addr
	for _, d := range discoveries {
		to = append(to, d.To)
		if !bytes.Equal(d.Data, discoveries[0].Data) {
			t.Errorf("the copy to %v differs from the first: one signed message should serve every node", d.To)
		}
	}
	want := []netip.Addr{addrOf("dir-b"), addrOf("scan-1"), addrOf("scan-2"), addrOf("scan-3")}
	if !slices.Equal(to, want) {
		t.Errorf("discovery went to %v, want every other member %v", to, want)
	}
	s.run(10 * interval)
	if diff := cmp.Diff(allUp(), s.status("dir-a")); diff != "" {
		t.Errorf("dir-a's table after 10 intervals (-want +got):\n%s", diff)
	}
	if st := s.engine("dir-a").Stats(); st.DiscoveriesSent != 11 || len(discoveries) != 11*4 {
		t.Errorf("%d discoveries counted, %d datagrams; want 11 and 44", st.DiscoveriesSent, len(discoveries))
	}
	if drops := s.grep("dropped"); len(drops) != 0 {
		t.Errorf("drops: %q", drops)
	}

	// The same replay rules: a copy delivered twice is dropped, and a copy
	// addressed to one node replayed to another is new there only once.
	last := discoveries[len(discoveries)-1]
	s.step(last.To, Packet{Src: addrOf("dir-a"), Data: last.Data})
	if got := s.engine(name(last.To)).Stats().Drops[DropReplay]; got != 1 {
		t.Errorf("%s: %d replay drops of a repeated discovery, want 1", name(last.To), got)
	}

	// Failover: dir-b discovers every node by unicast too.
	s.step(addrOf("dir-a"), SetActive{Active: false})
	s.step(addrOf("dir-b"), SetActive{Active: true})
	if diff := cmp.Diff(allUp(), s.status("dir-b")); diff != "" {
		t.Errorf("dir-b's table right after taking over (-want +got):\n%s", diff)
	}
}

// TestUnicastDiscoveryConfig: without unicast discovery a broadcast
// address is required; with it, it may be absent.
func TestUnicastDiscoveryConfig(t *testing.T) {
	cfg := testConfig("dir-a")
	cfg.Broadcast = netip.Addr{}
	if _, err := New(cfg, 1, nil); err == nil {
		t.Error("broadcast discovery without a broadcast address accepted")
	}
	cfg.UnicastDiscovery = true
	if _, err := New(cfg, 1, nil); err != nil {
		t.Errorf("unicast discovery without a broadcast address: %v", err)
	}
}
