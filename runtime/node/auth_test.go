package node

import (
	"bytes"
	"encoding/hex"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

var (
	authT0   = time.Unix(1_700_000_000, 0)
	keyPath  = "/etc/mwgc/vrrp-1.key"
	peerAddr = netip.MustParseAddr("192.0.2.12")
)

func authPlan(t *testing.T) []byte {
	t.Helper()
	p := &plan.Plan{APIVersion: plan.APIVersion, Cluster: "edge", Node: "a", Mode: plan.ModeHAProxy,
		Interfaces: []plan.Interface{{Name: "eth0", Segment: "s", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.11/24")}}},
		VRRP: &plan.VRRP{Priority: 200, Announce: plan.Announce{Count: 1}, RolloutGrace: plan.Duration(time.Second), Groups: []plan.Group{{
			Name: "g", VRID: 51, Interface: "eth0", Family: plan.FamilyIPv4, Version: 3, Checksum: plan.ChecksumPseudoHeader,
			AdvertInterval: plan.Duration(100 * time.Millisecond), Preempt: true, Source: netip.MustParseAddr("192.0.2.11"),
			VIPs:  []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
			Peers: []plan.Peer{{Name: "b", Address: peerAddr, Priority: 100, Auth: true}},
			Auth:  &plan.Auth{Mode: plan.AuthEnforce, ActiveKey: 1, Keys: []plan.Key{{ID: 1, File: keyPath}}},
		}}}}
	b, err := plan.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keyFile(secret []byte, mode fs.FileMode) File {
	return File{Data: []byte("hex:" + hex.EncodeToString(secret) + "\n"), Mode: mode}
}

// answer carries out a Prepare the way an executor that succeeds does,
// with the given key file.
func answer(p Prepare, key File) Prepared {
	out := Prepared{Txn: p.Txn}
	for _, s := range p.Steps {
		r := Result{Step: s}
		if rf, ok := s.(ReadFile); ok && rf.Path == keyPath {
			r.File = key
		}
		out.Results = append(out.Results, r)
	}
	return out
}

func find[T Effect](effects []Effect) (T, bool) {
	for _, e := range effects {
		if x, ok := e.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func count[T Effect](effects []Effect) int {
	n := 0
	for _, e := range effects {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

// startAuth runs a node to Active on the authenticated plan with secret.
func startAuth(t *testing.T, secret []byte) (*Node, time.Time) {
	t.Helper()
	n := New(Config{})
	eff := n.Step(authT0, PlanFile{Data: authPlan(t), Forced: true})
	p, ok := find[Prepare](eff)
	if !ok || !slices.ContainsFunc(p.Steps, func(s Effect) bool { r, ok := s.(ReadFile); return ok && r.Path == keyPath }) {
		t.Fatalf("no key file read in the Prepare: %v", eff)
	}
	eff = n.Step(authT0, answer(p, keyFile(secret, 0o600)))
	w, ok := find[Watch](eff)
	if !ok || !slices.Equal(w.Interfaces, []string{"eth0"}) || !slices.Contains(w.Addresses, peerAddr) {
		t.Fatalf("no Watch of eth0 after the commit: %v", eff)
	}
	now := authT0
	for n.sg.State() != vrrp.StateActive {
		now = n.Deadline()
		n.Step(now, Tick{})
	}
	return n, now
}

func lastAdvert(t *testing.T, eff []Effect) []byte {
	t.Helper()
	for i := len(eff) - 1; i >= 0; i-- {
		if s, ok := eff[i].(SendAdvert); ok {
			return s.Data
		}
	}
	t.Fatalf("no advert in %v", eff)
	return nil
}

func verifiesWith(t *testing.T, data []byte, secret []byte, now time.Time) bool {
	t.Helper()
	a, err := auth.New(auth.Config{Keys: []auth.Key{{ID: 1, Secret: secret}}, ActiveKey: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := a.Verify(now, netip.MustParseAddr("192.0.2.11"), 100*time.Millisecond, data[:12], data[12:])
	return res == auth.OK
}

// TestAuthKeys: the key file read in the Prepare signs; a refused file
// fails the plan; a changed file is in force after the re-read and the
// roll-out grace without any transition; an unsafe one is refused once.
func TestAuthKeys(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)

	// A world-readable key file refuses the plan.
	n := New(Config{})
	p, _ := find[Prepare](n.Step(authT0, PlanFile{Data: authPlan(t), Forced: true}))
	eff := n.Step(authT0, answer(p, keyFile(k1, 0o644)))
	if r, ok := find[PlanResult](eff); !ok || r.Result != ResultFailed || !strings.Contains(r.Err.Error(), "lets others read") {
		t.Fatalf("world-readable key: %v", eff)
	}
	if count[KeyFileRefused](eff) != 1 || n.Running() {
		t.Fatalf("refusal not reported or plan running: %v", eff)
	}

	n, now := startAuth(t, k1)
	now = n.Deadline()
	if !verifiesWith(t, lastAdvert(t, n.Step(now, Tick{})), k1, now) {
		t.Fatal("the advert does not verify with the key file's key")
	}
	// The re-read: every second a ReadFile; the changed content arrives.
	var rereads int
	var transitions int
	deadline := now.Add(5 * time.Second)
	changed := false
	for now.Before(deadline) {
		now = n.Deadline()
		eff := slices.Clone(n.Step(now, Tick{}))
		transitions += count[Transition](eff)
		for _, e := range eff {
			if rf, ok := e.(ReadFile); ok && rf.Path == keyPath {
				rereads++
				key := k1
				if rereads >= 2 {
					key, changed = k2, true
				}
				transitions += count[Transition](n.Step(now, FileRead{Path: keyPath, File: keyFile(key, 0o600)}))
			}
		}
	}
	if rereads < 3 || !changed || transitions != 0 {
		t.Fatalf("%d re-reads, changed %v, %d transitions", rereads, changed, transitions)
	}
	now = n.Deadline()
	if data := lastAdvert(t, n.Step(now, Tick{})); !verifiesWith(t, data, k2, now) {
		t.Fatal("the changed key is not in force after the grace")
	}
	// An unsafe file: refused once, the key in use stays.
	eff = n.Step(now, FileRead{Path: keyPath, File: keyFile(k1, 0o666)})
	eff2 := n.Step(now, FileRead{Path: keyPath, File: keyFile(k1, 0o666)})
	if count[KeyFileRefused](eff) != 1 || count[KeyFileRefused](eff2) != 0 {
		t.Fatalf("unsafe file reported %d, then %d times", count[KeyFileRefused](eff), count[KeyFileRefused](eff2))
	}
	now = n.Deadline()
	if data := lastAdvert(t, n.Step(now, Tick{})); !verifiesWith(t, data, k2, now) {
		t.Fatal("a refused file replaced the key in use")
	}
}

// TestAuthAlarms: a forged advert in the peer's name raises an
// auth-failure alarm with the MAC the watcher saw; a frame with our own
// address an own-address alarm; both reported for metrics and in status.
func TestAuthAlarms(t *testing.T) {
	n, now := startAuth(t, bytes.Repeat([]byte{1}, 32))
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
	n.Step(now, WatchFrame{Interface: "eth0", Src: peerAddr, MAC: mac, Count: 1})
	ad := vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: 255, MaxAdvertInterval: 10, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	data, _ := ad.Marshal(peerAddr, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
	eff := n.Step(now, VRRPPacket{Socket: Socket{Interface: "eth0", Source: netip.MustParseAddr("192.0.2.11")}, Src: peerAddr, Dst: vrrp.GroupIPv4, TTL: 255, Data: data})
	if imp, ok := find[Impersonation](eff); !ok || imp.Kind != "auth-failure" {
		t.Fatalf("no auth-failure report: %v", eff)
	}
	eff = n.Step(now, WatchFrame{Interface: "eth0", Src: netip.MustParseAddr("192.0.2.11"), MAC: mac, Count: 3})
	if imp, ok := find[Impersonation](eff); !ok || imp.Kind != "own-address" || imp.Count != 3 {
		t.Fatalf("no own-address report: %v", eff)
	}
	st := n.Status()
	if len(st.Alarms) != 2 || st.Alarms[0].Kind != "own-address" || st.Alarms[1].Kind != "auth-failure" ||
		st.Alarms[1].MACs[0].MAC != mac.String() || st.Alarms[1].Reason != "auth-missing" {
		t.Fatalf("alarms %+v", st.Alarms)
	}
	g := st.Groups[0]
	if g.Auth == nil || g.Auth.Mode != "enforce" || g.Peers[0].AuthFailures != 1 || g.State != "Active" {
		t.Fatalf("group status %+v", g)
	}
}
