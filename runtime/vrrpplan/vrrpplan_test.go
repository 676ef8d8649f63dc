package vrrpplan

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

func testPlan() *plan.Plan {
	return &plan.Plan{VRRP: &plan.VRRP{Priority: 200, RolloutGrace: plan.Duration(time.Minute), Groups: []plan.Group{{
		Name: "g4", VRID: 51, Family: plan.FamilyIPv4, Checksum: plan.ChecksumPseudoHeader,
		AdvertInterval: plan.Duration(100 * time.Millisecond), Preempt: true, Source: netip.MustParseAddr("192.0.2.11"),
		VIPs:  []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		Peers: []plan.Peer{{Name: "b", Address: netip.MustParseAddr("192.0.2.12"), Priority: 100, Auth: true}},
		Auth:  &plan.Auth{Mode: plan.AuthPermissive, ActiveKey: 2, Window: plan.Duration(7 * time.Second), Keys: []plan.Key{{ID: 1, File: "/k/1"}, {ID: 2, File: "/k/2"}}},
	}, {
		Name: "g6", VRID: 51, Family: plan.FamilyIPv6, AdvertInterval: plan.Duration(time.Second), Source: netip.MustParseAddr("fe80::11"),
		VIPs:  []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")},
		Peers: []plan.Peer{{Name: "b", Address: netip.MustParseAddr("fe80::12"), Priority: 100}},
		Auth:  &plan.Auth{Mode: plan.AuthEnforce, ActiveKey: 1, Keys: []plan.Key{{ID: 1, File: "/k/1"}}},
	}}}}
}

func TestConfig(t *testing.T) {
	p := testPlan()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	keys := Keys{"/k/1": k1, "/k/2": k2}
	if diff := cmp.Diff([]string{"/k/1", "/k/2"}, KeyFiles(p)); diff != "" {
		t.Fatalf("KeyFiles (-want +got):\n%s", diff)
	}
	got, err := Config(p, &p.VRRP.Groups[0], keys)
	if err != nil {
		t.Fatal(err)
	}
	want := vrrp.Config{VRID: 51, Priority: 200, Source: netip.MustParseAddr("192.0.2.11"), AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.12")},
		Checksum: vrrp.ChecksumPseudoHeader, PolicyGrace: time.Minute, Reannounce: vrrp.Reannounce{Holdoff: time.Second},
		Policy: []vrrp.PeerPolicy{{Addr: netip.MustParseAddr("192.0.2.12"), Priority: 100}},
		Auth:   &auth.Config{Mode: auth.ModePermissive, ActiveKey: 2, Window: 7 * time.Second, Keys: []auth.Key{{ID: 1, Secret: k1}, {ID: 2, Secret: k2}}}}
	cmpAddr := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	if diff := cmp.Diff(want, got, cmpAddr, cmpPrefix); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if _, err := vrrp.NewRouter(got); err != nil {
		t.Fatalf("the engine refuses the mapped config: %v", err)
	}
	g6, err := Config(p, &p.VRRP.Groups[1], keys)
	if err != nil || g6.Checksum != vrrp.ChecksumIPv6 || g6.Auth.Mode != auth.ModeEnforce {
		t.Fatalf("IPv6 group: %+v %v", g6, err)
	}
	if _, err := Config(p, &p.VRRP.Groups[0], Keys{"/k/1": k1}); err == nil || !strings.Contains(err.Error(), "/k/2 was not read") {
		t.Fatalf("missing key: %v", err)
	}
	p.VRRP.Groups[0].Auth = nil
	if c, _ := Config(p, &p.VRRP.Groups[0], nil); c.Auth != nil {
		t.Fatal("auth without plan auth")
	}
}

// A plan without a reannounce section gets the default; count 0 turns
// re-announcement (and the yield advert) off.
func TestConfigReannounce(t *testing.T) {
	p := testPlan()
	p.VRRP.Groups[0].Auth = nil
	for _, c := range []struct {
		in   *plan.Reannounce
		want vrrp.Reannounce
	}{
		{nil, vrrp.Reannounce{Holdoff: time.Second}},
		{&plan.Reannounce{Count: 5, Holdoff: plan.Duration(300 * time.Millisecond), Refresh: plan.Duration(time.Minute)},
			vrrp.Reannounce{Holdoff: 300 * time.Millisecond, Refresh: time.Minute}},
		{&plan.Reannounce{Count: 0, Holdoff: plan.Duration(time.Second)}, vrrp.Reannounce{Disabled: true, Holdoff: time.Second}},
	} {
		p.VRRP.Announce.Reannounce = c.in
		got, err := Config(p, &p.VRRP.Groups[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Reannounce != c.want {
			t.Errorf("plan %+v: engine %+v, want %+v", c.in, got.Reannounce, c.want)
		}
	}
}
