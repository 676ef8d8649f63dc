package netlab

import (
	"strings"
	"testing"
	"time"
)

// Two FRR routers elect the higher priority; its adverts come from the
// virtual MAC with the parent's address; the Backup's macvlan is in
// protodown; a stop hands over.
func TestFRRPair(t *testing.T) {
	l := New(t, "fa", "fb")
	l.AddAddr("fa", "192.0.2.61/24")
	l.AddAddr("fb", "192.0.2.62/24")
	c := l.Capture("ip proto 112")
	in := FRRInstance{VRID: 9, AdvertInterval: 100 * time.Millisecond, VIPs: []string{"192.0.2.109/24"}}
	in.Priority = 100
	fb := l.StartFRR("fb", in)
	in.Priority = 150
	fa := l.StartFRR("fa", in)
	if !fa.WaitState("Master", 1, 10*time.Second) {
		t.Fatalf("fa never Master:\n%s", fa.Log())
	}
	time.Sleep(500 * time.Millisecond)
	if show := l.Run("fb", "ip", "-d", "link", "show", fb.Macvlan); !strings.Contains(show, "protodown on") {
		t.Errorf("the Backup's macvlan is not in protodown:\n%s", show)
	}
	fa.Stop()
	if !fb.WaitState("Master", 2, 5*time.Second) { // once at start-up, once now
		t.Errorf("fb did not take over:\n%s", fb.Log())
	}
	rows, err := Decode(c.Stop(), "vrrp", "eth.src", "ip.src", "vrrp.prio")
	if err != nil {
		t.Fatal(err)
	}
	var fromA int
	for _, r := range rows {
		if r[0] != "00:00:5e:00:01:09" {
			t.Errorf("an advert from %s, not the virtual MAC: %v", r[0], r)
		}
		if r[1] == "192.0.2.61" && r[2] == "150" {
			fromA++
		}
	}
	if fromA < 3 {
		t.Errorf("%d adverts of fa in %d", fromA, len(rows))
	}
}
