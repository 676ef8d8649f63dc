package vrrp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// The vectors of ../shared/facts.md: key 00..1f, key id 1, VRID 51,
// priority 200, interval 100 cs, sequence 0x6800000080000000.
var (
	vecKey = func() []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(i)
		}
		return k
	}()
	vecTime = time.Unix(0x68000000, 500_000_000)
	vecV4   = mustHex("3133c80100644402c0000264010100006800000080000000" + "1b84bc4e8e43892dc6d98448f8ee2265")
	vecV6   = mustHex("3133c8010064a2e9fe800000000000000000000000000100010100006800000080000000" + "c8c56146ebfd66ee10ec4d8186461b78")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func keyring(mode auth.Mode, active uint8, ids ...uint8) *auth.Config {
	c := &auth.Config{Mode: mode, ActiveKey: active}
	for _, id := range ids {
		c.Keys = append(c.Keys, auth.Key{ID: id, Secret: bytes.Repeat([]byte{id}, 32)})
	}
	return c
}

func vecConfig(src, vip string) Config {
	return Config{VRID: 51, Priority: 200, Source: netip.MustParseAddr(src), AdvertInterval: time.Second,
		VIPs: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(vip), 64)}, Peers: []netip.Addr{netip.MustParseAddr("198.51.100.20")},
		Checksum: ChecksumRFC9568, Auth: &auth.Config{Keys: []auth.Key{{ID: 1, Secret: vecKey}}, ActiveKey: 1}}
}

// TestAuthVectorsFromRouter: a Router becoming Active at the vectors' time
// sends the facts.md adverts, and a peer Router accepts them (IPv6 with
// the checksum the kernel computes for the vector's destination).
func TestAuthVectorsFromRouter(t *testing.T) {
	cfg := vecConfig("198.51.100.10", "192.0.2.100")
	cfg.VIPs[0] = netip.MustParsePrefix("192.0.2.100/24")
	cfg6 := vecConfig("fe80::10", "fe80::100")
	cfg6.Checksum, cfg6.Peers = 0, []netip.Addr{netip.MustParseAddr("fe80::20")}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []byte
		dst  netip.Addr
	}{{"IPv4", cfg, vecV4, GroupIPv4}, {"IPv6", cfg6, vecV6, netip.MustParseAddr("fe80::20")}} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRouter(t, tc.cfg)
			start := vecTime.Add(-ActiveDownInterval(200, time.Second))
			r.Step(start, Start{})
			acts := r.Step(vecTime, Tick{})
			send, ok := acts[0].(SendAdvert)
			if !ok {
				t.Fatalf("first action %#v", acts[0])
			}
			got := bytes.Clone(send.Data)
			if tc.name == "IPv6" {
				// Our checksum is for ff02::12; the vector's for fe80::20.
				setIPv6Checksum(got, tc.cfg.Source, tc.dst)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("advert (-vector +got):\n%s", diff)
			}
			// The receiving side: a Backup configured with the vector's
			// source as its peer accepts it.
			rx := tc.cfg
			rx.Source, rx.Peers, rx.Priority = rx.Peers[0], []netip.Addr{tc.cfg.Source}, 100
			b := mustRouter(t, rx)
			b.Step(vecTime, Start{})
			b.Step(vecTime, Packet{Src: tc.cfg.Source, Dst: tc.dst, TTL: 255, Data: tc.want})
			if s := b.Stats(); s.AdvertsReceived != 1 || s.Auth.Verified != 1 || s.Peers[0].Signed != 1 || s.Peers[0].LastKeyID != 1 {
				t.Fatalf("the vector was not accepted: %+v", s)
			}
		})
	}
}

var (
	authA = netip.MustParseAddr("192.0.2.1")
	authB = netip.MustParseAddr("192.0.2.2")
)

func authPair(t *testing.T, ka, kb *auth.Config) (a, b *Router) {
	t.Helper()
	vips := []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}
	a = mustRouter(t, Config{VRID: 7, Priority: 200, Source: authA, AdvertInterval: 100 * time.Millisecond, Preempt: true, VIPs: vips, Peers: []netip.Addr{authB}, Auth: ka})
	b = mustRouter(t, Config{VRID: 7, Priority: 100, Source: authB, AdvertInterval: 100 * time.Millisecond, Preempt: true, VIPs: vips, Peers: []netip.Addr{authA}, Auth: kb})
	return a, b
}

// advertOf returns the data of the first SendAdvert in acts.
func advertOf(t *testing.T, acts []Action) []byte {
	t.Helper()
	for _, a := range acts {
		if s, ok := a.(SendAdvert); ok {
			return s.Data
		}
	}
	t.Fatalf("no advert in %v", acts)
	return nil
}

// activeAdvert makes a Active and returns one advert it sent at now.
func activeAdvert(t *testing.T, a *Router, now time.Time) []byte {
	t.Helper()
	a.Step(now.Add(-time.Second), Start{})
	return advertOf(t, a.Step(now, Tick{}))
}

func dropOf(acts []Action) DropReason {
	for _, a := range acts {
		if d, ok := a.(Dropped); ok {
			return d.Reason
		}
	}
	return DropNone
}

// TestAuthReceive: what reaches a Backup in each mode, and under which
// reason it is dropped. Nothing dropped moves the Backup.
func TestAuthReceive(t *testing.T) {
	now := vecTime
	signed := func(k *auth.Config) []byte {
		a, _ := authPair(t, k, nil)
		return activeAdvert(t, a, now)
	}
	good := signed(keyring(auth.ModeEnforce, 1, 1))
	unsigned := signed(nil)
	otherKey := signed(keyring(auth.ModeEnforce, 2, 2))
	stale := func() []byte {
		a, _ := authPair(t, keyring(auth.ModeEnforce, 1, 1), nil)
		return activeAdvert(t, a, now.Add(-time.Hour))
	}()
	badMAC := bytes.Clone(good)
	badMAC[len(badMAC)-1] ^= 1
	malformed := bytes.Clone(good)
	malformed[12] = 2 // scheme
	for _, tc := range []struct {
		name string
		mode auth.Mode
		data []byte
		want DropReason
	}{
		{"signed", auth.ModeEnforce, good, DropNone},
		{"unsigned, enforce", auth.ModeEnforce, unsigned, DropAuthMissing},
		{"unsigned, permissive", auth.ModePermissive, unsigned, DropNone},
		{"unsigned, receive-only", auth.ModeReceiveOnly, unsigned, DropNone},
		{"unknown key", auth.ModeEnforce, otherKey, DropAuthUnknownKey},
		{"unknown key, permissive", auth.ModePermissive, otherKey, DropAuthUnknownKey},
		{"bad MAC", auth.ModeEnforce, badMAC, DropAuthBadMAC},
		{"bad MAC, receive-only", auth.ModeReceiveOnly, badMAC, DropAuthBadMAC},
		{"stale", auth.ModeEnforce, stale, DropAuthStale},
		{"malformed", auth.ModeEnforce, malformed, DropAuthMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b := authPair(t, nil, keyring(tc.mode, 1, 1))
			b.Step(now, Start{})
			deadline := b.Deadline()
			acts := b.Step(now.Add(10*time.Millisecond), Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: tc.data})
			if got := dropOf(acts); got != tc.want {
				t.Fatalf("dropped as %v, want %v (%v)", got, tc.want, acts)
			}
			s := b.Stats()
			if tc.want != DropNone {
				if s.Drops[tc.want] != 1 || s.Peers[0].AuthFailures != 1 || !tc.want.IsAuthFailure() {
					t.Fatalf("not counted: %+v", s)
				}
				if !b.Deadline().Equal(deadline) || b.State() != StateBackup {
					t.Fatal("a dropped advert moved the Backup's timer")
				}
				return
			}
			if b.Deadline().Equal(deadline) {
				t.Fatal("an accepted advert did not reset the down timer")
			}
			if len(tc.data) > 12 {
				if s.Peers[0].Signed != 1 {
					t.Fatalf("signed advert not counted: %+v", s.Peers[0])
				}
			} else if s.Peers[0].Unsigned != 1 || s.Auth.Unsigned != 1 {
				t.Fatalf("unsigned advert not counted: %+v", s.Peers[0])
			}
		})
	}
	// Replay: the same signed advert twice.
	_, b := authPair(t, nil, keyring(auth.ModeEnforce, 1, 1))
	b.Step(now, Start{})
	b.Step(now, Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: good})
	if got := dropOf(b.Step(now, Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: good})); got != DropAuthReplay {
		t.Fatalf("replay dropped as %v", got)
	}
	// A router without authentication refuses a trailer by its length, as
	// keepalived does.
	_, plain := authPair(t, nil, nil)
	plain.Step(now, Start{})
	if got := dropOf(plain.Step(now, Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: good})); got != DropLength {
		t.Fatalf("trailer without auth dropped as %v", got)
	}
}

// TestAuthModesSend: receive-only sends no trailer; the others do.
func TestAuthModesSend(t *testing.T) {
	for _, tc := range []struct {
		mode auth.Mode
		size int
	}{{auth.ModeEnforce, 12 + auth.TrailerLen}, {auth.ModePermissive, 12 + auth.TrailerLen}, {auth.ModeReceiveOnly, 12}} {
		a, _ := authPair(t, keyring(tc.mode, 1, 1), nil)
		if got := len(activeAdvert(t, a, vecTime)); got != tc.size {
			t.Errorf("%v: advert of %d bytes, want %d", tc.mode, got, tc.size)
		}
	}
}

// TestAuthReconfigure: keys, mode and window change in place: no action,
// no transition, the peer's mark kept (a replay stays a replay), the new
// active key used from the next advert.
func TestAuthReconfigure(t *testing.T) {
	now := vecTime
	a, b := authPair(t, keyring(auth.ModeEnforce, 1, 1), keyring(auth.ModeEnforce, 1, 1))
	adv := activeAdvert(t, a, now)
	b.Step(now, Start{})
	b.Step(now, Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: adv})
	for _, step := range []struct {
		r   *Router
		cfg *auth.Config
	}{{b, keyring(auth.ModeEnforce, 1, 1, 2)}, {a, keyring(auth.ModeEnforce, 1, 1, 2)}, {a, keyring(auth.ModePermissive, 2, 1, 2)}, {b, keyring(auth.ModeEnforce, 2, 2)}} {
		cfg := step.r.Config()
		cfg.Auth = step.cfg
		if acts := step.r.Step(now, Reconfigure{Config: cfg}); len(acts) != 0 {
			t.Fatalf("reconfigure gave %v", acts)
		}
	}
	if got := dropOf(b.Step(now, Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: adv})); got != DropAuthUnknownKey {
		t.Fatalf("old advert with the removed key: %v", got)
	}
	next := advertOf(t, a.Step(now.Add(time.Second), Tick{}))
	if tr, _ := auth.ParseTrailer(next[12:]); tr.KeyID != 2 {
		t.Fatalf("signed with key %d after the move", tr.KeyID)
	}
	if got := dropOf(b.Step(now.Add(time.Second), Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: next})); got != DropNone {
		t.Fatalf("advert with the new key: %v", got)
	}
	if got := dropOf(b.Step(now.Add(time.Second), Packet{Src: authA, Dst: GroupIPv4, TTL: 255, Data: next})); got != DropAuthReplay {
		t.Fatalf("replay after reconfigures: %v", got)
	}
	if s := b.Stats(); s.Transitions != 1 || s.Auth.ActiveKey != 2 || !slicesEqual(s.Auth.KeyIDs, []uint8{2}) {
		t.Fatalf("stats after rotation: %+v", s)
	}
	bad := b.Config()
	bad.Auth = keyring(auth.ModeEnforce, 9, 2)
	acts := b.Step(now, Reconfigure{Config: bad})
	if len(acts) != 1 {
		t.Fatalf("bad auth config: %v", acts)
	}
	if rej, ok := acts[0].(Rejected); !ok || !errors.Is(rej.Err, rej.Err) || b.Stats().Auth.ActiveKey != 2 {
		t.Fatalf("bad auth config not rejected: %v", acts)
	}
}

func slicesEqual(a, b []uint8) bool { return bytes.Equal(a, b) }
