package agent

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

var far = netip.MustParseAddr("203.0.113.9")

// unicastPlan: testPlan's group sends by unicast to b and to an external
// peer behind a router.
func unicastPlan() *plan.Plan {
	p := testPlan()
	g := &p.VRRP.Groups[0]
	g.Unicast = &plan.Unicast{MinTTL: 255}
	g.Peers = append(g.Peers, plan.Peer{Name: "far", Address: far, Priority: 50, External: true})
	return p
}

// writtenByPeer returns the unicast copies written so far, by destination.
func (c *fakeConn) writtenByPeer() map[netip.Addr][][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[netip.Addr][][]byte{}
	for _, w := range c.writtenTo {
		out[w.to] = append(out[w.to], w.data)
	}
	return out
}

// TestUnicastGroup: the Active writes every advert to each peer by
// unicast (none to the group), each copy with the checksum of its
// destination; /status and the metrics show each peer's copies, its last
// advert and its drops.
func TestUnicastGroup(t *testing.T) {
	h := start(t, unicastPlan())
	h.waitActive()
	c := h.net.conn(connV4)
	h.eventually("copies to both peers", func() bool {
		w := c.writtenByPeer()
		return len(w[peer]) >= 3 && len(w[far]) >= 3
	})
	if n := len(c.adverts(t, self)); n != 0 {
		t.Errorf("%d adverts written to the multicast group", n)
	}
	w := c.writtenByPeer()
	for to, copies := range w {
		for _, b := range copies {
			if _, form, err := vrrp.Parse(b, self, to); err != nil || form != vrrp.ChecksumPseudoHeader {
				t.Fatalf("copy to %v does not parse there: %v %v", to, form, err)
			}
		}
	}
	if bytes.Equal(w[peer][0], w[far][0]) {
		t.Error("the copies to two peers are identical: the checksum should name each destination")
	}

	send := func(dst netip.Addr, prio uint8) {
		ad := vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: prio, MaxAdvertInterval: 1,
			Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
		b, err := ad.Marshal(peer, dst, vrrp.ChecksumPseudoHeader)
		if err != nil {
			t.Fatal(err)
		}
		c.inject(fakePacket{src: peer, dst: dst, data: b})
	}
	send(self, 100) // b, lower, by unicast: counted, answered
	send(netip.MustParseAddr("192.0.2.100"), 100)
	h.eventually("b's advert and its misaddressed one counted", func() bool {
		return h.metric(`mwgc_agent_unicast_drops_total{group="inside-v4",peer="b",reason="destination"}`) == 1 &&
			h.metric(`mwgc_agent_unicast_adverts_received_total{group="inside-v4",peer="b"}`) == 1
	})
	g := h.status().Groups[0]
	if g.Unicast == nil || len(g.Unicast.Peers) != 2 {
		t.Fatalf("unicast status %+v", g.Unicast)
	}
	b, f := g.Unicast.Peers[0], g.Unicast.Peers[1]
	if b.Name != "b" || b.AdvertsReceived != 1 || b.LastAdvert.IsZero() || b.Drops["destination"] != 1 || b.AdvertsSent == 0 {
		t.Errorf("peer b in /status: %+v", b)
	}
	if f.Name != "far" || !f.External || f.AdvertsSent == 0 || f.SendErrors != 0 || !f.LastAdvert.IsZero() {
		t.Errorf("peer far in /status: %+v", f)
	}
	if v := h.metric(`mwgc_agent_unicast_adverts_sent_total{group="inside-v4",peer="far"}`); v < 3 {
		t.Errorf("copies to far in /metrics: %v", v)
	}
	if v := h.metric(`mwgc_agent_unicast_last_advert_timestamp_seconds{group="inside-v4",peer="b"}`); v < 1e9 {
		t.Errorf("b's last advert timestamp: %v", v)
	}
	if s := h.status(); s.State != "Active" {
		t.Errorf("a lower priority's advert moved the node to %s", s.State)
	}
}
