package vrrp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// advertFrom encodes a valid advert of cfg's virtual router from src.
func advertFrom(t testing.TB, cfg Config, src netip.Addr, prio uint8) Packet {
	t.Helper()
	a := Advert{Version: 3, Type: 1, VRID: cfg.VRID, Priority: prio,
		MaxAdvertInterval: uint16(cfg.AdvertInterval / (10 * time.Millisecond))}
	for _, p := range cfg.VIPs {
		a.Addresses = append(a.Addresses, p.Addr())
	}
	dst, form := GroupIPv4, ChecksumRFC9568
	if src.Is6() {
		dst, form = GroupIPv6, ChecksumIPv6
	}
	data, err := a.Marshal(src, dst, form)
	if err != nil {
		t.Fatal(err)
	}
	return Packet{Src: src, Dst: dst, TTL: RequiredTTL, Data: data}
}

// An Active flooded with forged lower-priority adverts (from a listed peer's
// address, as an attacker on the segment can send) answers each with one
// advert, as RFC 9568 asks, but asks for at most one re-announcement per
// holdoff at once and one more when it ends: 2 × (1 + span/holdoff) over
// the whole flood.
func TestReannounceBoundUnderFlood(t *testing.T) {
	for _, tc := range []struct {
		holdoff, refresh, every time.Duration
	}{
		{holdoff: 0, every: 100 * time.Microsecond}, // the default, 1s
		{holdoff: 100 * time.Millisecond, every: time.Millisecond},
		{holdoff: 250 * time.Millisecond, refresh: time.Second, every: 10 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("holdoff %v refresh %v", tc.holdoff, tc.refresh), func(t *testing.T) {
			cfg := Config{VRID: 1, Priority: 255, Source: netip.MustParseAddr("192.0.2.1"), AdvertInterval: 10 * time.Millisecond,
				VIPs:       []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("192.0.2.101/24")},
				Peers:      []netip.Addr{netip.MustParseAddr("192.0.2.2")},
				Reannounce: Reannounce{Holdoff: tc.holdoff, Refresh: tc.refresh}}
			r := mustRouter(t, cfg)
			holdoff := r.Config().Reannounce.Holdoff
			forged := advertFrom(t, cfg, netip.MustParseAddr("192.0.2.2"), 100)
			now := t0
			r.Step(now, Start{})
			const span = 5 * time.Second
			var in, answers, ticks, reannounced, refreshed int
			count := func(acts []Action) {
				for _, a := range acts {
					switch a := a.(type) {
					case SendAdvert:
						answers++
					case Announce:
						switch a.Reason {
						case AnnounceRefresh:
							refreshed++
						case AnnounceTakeover:
						default:
							reannounced++
						}
					case Transition:
						t.Fatalf("flood moved the router: %v", a)
					}
				}
			}
			for now.Before(t0.Add(span)) {
				now = now.Add(tc.every)
				if d := r.Deadline(); !d.After(now) {
					ticks++
					count(r.Step(now, Tick{}))
				}
				in++
				count(r.Step(now, forged))
			}
			count(r.Step(now.Add(holdoff), Tick{}))
			if limit := 2 * (1 + int(span/holdoff)); reannounced > limit {
				t.Errorf("%d re-announcements in %v with holdoff %v, bound %d", reannounced, span, holdoff, limit)
			}
			if reannounced < int(span/holdoff) {
				t.Errorf("%d re-announcements in %v with holdoff %v: the causes were not served", reannounced, span, holdoff)
			}
			if tc.refresh > 0 && refreshed > 1+int(span/tc.refresh) {
				t.Errorf("%d refreshes in %v at %v", refreshed, span, tc.refresh)
			}
			if answers > in+ticks+1 {
				t.Errorf("%d adverts sent for %d received and %d ticks: more than one per event", answers, in, ticks)
			}
		})
	}
}

// When one member learns that another node acted as Active, every Active
// member announces again, once, each within its own holdoff.
func TestSyncGroupSpreadsReannounce(t *testing.T) {
	g := twoFamilies(t)
	step := func(at time.Duration, member int, ev Event, want ...string) {
		t.Helper()
		got := g.Step(t0.Add(at), member, ev)
		if diff := cmp.Diff(want, renderMember(got)); diff != "" {
			t.Fatalf("at %v: actions (-want +got):\n%s", at, diff)
		}
	}
	step(0, -1, Start{}, "0: Initialize->Backup", "1: Initialize->Backup")
	step(3609375*time.Microsecond, -1, Tick{},
		"0: send 100", "0: add 192.0.2.100/24", "0: announce 192.0.2.100/24", "0: Backup->Active",
		"1: send 100", "1: add 2001:db8::100/64", "1: announce 2001:db8::100/64", "1: Backup->Active")
	v4 := g.Router(0).Config()
	lower := advertFrom(t, v4, netip.MustParseAddr("192.0.2.2"), 50)
	step(4*time.Second, 0, lower,
		"0: send 100", "0: reannounce lower-priority 192.0.2.100/24",
		"1: reannounce lower-priority 2001:db8::100/64")
	// Inside the holdoff: held off, and spread when it is served.
	step(4300*time.Millisecond, 0, lower, "0: send 100")
	step(5*time.Second, -1, Tick{},
		"0: reannounce lower-priority 192.0.2.100/24", "1: reannounce lower-priority 2001:db8::100/64")
	// A pause seen by every member on one tick: one announcement each.
	step(20*time.Second, -1, Tick{},
		"0: send 100", "0: reannounce pause 192.0.2.100/24",
		"1: send 100", "1: reannounce pause 2001:db8::100/64")
}
