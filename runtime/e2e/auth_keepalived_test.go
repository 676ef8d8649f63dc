package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// kaPair is mwgc director a (priority 200) and keepalived 2.4.3 on node k
// (an external peer with priority 100) sharing an IPv4 group (VRID 51)
// and, when ipv6, an IPv6 group (VRID 52), both authenticated with the
// same key files when auth is set.
type kaPair struct {
	lab  *netlab.Lab
	c    *Cluster
	kcfg netlab.KeepalivedConfig
	bin  string
}

func newKAPair(t *testing.T, ipv6 bool, auth *plan.Auth, kAuth *netlab.KeepalivedAuth) *kaPair {
	t.Helper()
	lab := netlab.New(t, "a", "k")
	bin := netlab.Keepalived243(t)
	lab.AddAddr("k", "192.0.2.21/24")
	c := &Cluster{
		Name:      "edge",
		Directors: []Director{{Node: "a", Priority: 200, Index: 11}},
		Groups:    []Group{{Name: "inside-v4", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"}}},
		External:  []ExternalPeer{{Name: "k", Addr: netip.MustParseAddr("192.0.2.21"), Priority: 100, Auth: true}},
		Auth:      auth,
	}
	inst := []netlab.KeepalivedInstance{{Name: "VI_51", VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond,
		VIPs: []string{"192.0.2.100/24"}, AuthHMAC: kAuth}}
	if ipv6 {
		lab.AddAddr("k", "2001:db8::21/64")
		c.Groups = append(c.Groups, Group{Name: "inside-v6", VRID: 52, Iface: "eth0", Family: plan.FamilyIPv6, VIPs: []string{"2001:db8::100/64"}})
		c.External = append(c.External, ExternalPeer{Name: "k6", Addr: netip.MustParseAddr(lab.LinkLocal("k")), Priority: 100, Auth: true})
		inst = append(inst, netlab.KeepalivedInstance{Name: "VI_52", VRID: 52, Priority: 100, AdvertInterval: 100 * time.Millisecond,
			VIPs: []string{"2001:db8::100/64"}, GlobalFirst: true, AuthHMAC: kAuth})
	}
	c.SetupAddresses(lab)
	kcfg := netlab.KeepalivedConfig{Binary: bin, Instances: inst}
	if ipv6 {
		kcfg.SyncGroup = "all" // as mwgc's groups, they move together
	}
	return &kaPair{lab: lab, c: c, bin: bin, kcfg: kcfg}
}

// masters counts how often keepalived logged that instance became MASTER.
func masters(k *netlab.Keepalived, instance string) int {
	return strings.Count(k.Log(), "("+instance+") Entering MASTER STATE")
}

// TestAuthKeepalived: mwgc-agent and keepalived 2.4.3 with auth_hmac
// (enforce, one key file for both), IPv4 and IPv6: mwgc wins the election
// and hands over gracefully to keepalived; with a lower priority it loses
// the election and takes over on keepalived's graceful stop. Then
// keepalived gets a different key: each side drops the other's adverts
// and counts it (mwgc: auth-bad-mac, keepalived: "invalid authentication
// HMAC").
func TestAuthKeepalived(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "vrrp-1.key")
	writeKeyFile(t, key)
	p := newKAPair(t, true, &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: key}}, ActiveKey: 1},
		&netlab.KeepalivedAuth{Keys: map[int]string{1: key}, ActiveKey: 1})
	lab := p.lab
	k := lab.StartKeepalived("k", p.kcfg)
	for _, in := range []string{"VI_51", "VI_52"} {
		if !k.WaitState(in, "MASTER", 1, 5*time.Second) {
			t.Fatalf("keepalived %s alone did not become MASTER:\n%s", in, k.Log())
		}
	}
	// Election, mwgc (200) wins.
	a := StartAgent(t, lab, p.c.Plan("a"))
	waitState(t, a, "Active", 5*time.Second)
	for _, in := range []string{"VI_51", "VI_52"} {
		if !k.WaitState(in, "BACKUP", 1, 5*time.Second) {
			t.Fatalf("keepalived %s did not yield to mwgc:\n%s", in, k.Log())
		}
	}
	Eventually(t, 3*time.Second, "VIPs only on a", func() (bool, string) {
		return lab.HasAddr("a", "192.0.2.100/24") && lab.HasAddr("a", "2001:db8::100/64") &&
			!lab.HasAddr("k", "192.0.2.100/24") && !lab.HasAddr("k", "2001:db8::100/64"), ""
	})
	s, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range s.Groups {
		if g.Auth == nil || g.Peers[0].Signed == 0 || g.Peers[0].AuthFailures != 0 {
			t.Fatalf("group %s: keepalived's adverts not verified: %+v %+v", g.Name, g.Auth, g.Peers)
		}
	}
	// Graceful mwgc -> keepalived.
	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not exit 0: %v", err)
	}
	for _, in := range []string{"VI_51", "VI_52"} {
		if !k.WaitState(in, "MASTER", 2, 3*time.Second) {
			t.Fatalf("keepalived %s did not take over after mwgc's SIGTERM:\n%s", in, k.Log())
		}
	}
	p.c.Directors[0].Priority = 50
	loseToKeepalivedThenTakeOver(t, a, p.c.Plan("a"), k)

	// A wrong key on keepalived: both sides count the other's adverts as
	// forgeries (and both end up Active: that is what a wrong key does).
	other := filepath.Join(dir, "vrrp-other.key")
	writeKeyFile(t, other)
	p.kcfg.Instances[0].AuthHMAC = &netlab.KeepalivedAuth{Keys: map[int]string{1: other}, ActiveKey: 1}
	p.kcfg.Instances[1].AuthHMAC = p.kcfg.Instances[0].AuthHMAC
	k = lab.StartKeepalived("k", p.kcfg)
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v4",reason="auth-bad-mac"}`, 3, 10*time.Second)
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v6",reason="auth-bad-mac"}`, 3, 10*time.Second)
	Eventually(t, 3*time.Second, "keepalived counts mwgc's adverts as invalid", func() (bool, string) {
		return strings.Contains(k.Log(), "invalid authentication HMAC from 192.0.2.11") &&
			strings.Contains(k.Log(), "invalid authentication HMAC from fe80::b"), ""
	})
	_ = os.Remove(other)
}

// TestAuthRolloutWithKeepalived walks docs/security.md's procedures across
// mwgc-agent (Active, 200) and keepalived 2.4.3 (Backup, 100), IPv4:
// authentication off -> receive-only -> permissive -> enforce, then a key
// rotation (key 2 added, made active, key 1 removed). At every step mwgc
// reloads its plan and keepalived its configuration (SIGHUP), one after
// the other. Nobody changes state; a client asking for the VIP every
// 10 ms is always answered by mwgc.
func TestAuthRolloutWithKeepalived(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "vrrp-1.key"), filepath.Join(dir, "vrrp-2.key")
	writeKeyFile(t, k1)
	writeKeyFile(t, k2)
	p := newKAPair(t, false, nil, nil)
	lab := p.lab
	lab.AddAddr("k", "192.0.2.50/24") // the client: k's namespace also asks (no extra node)
	k := lab.StartKeepalived("k", p.kcfg)
	if !k.WaitState("VI_51", "MASTER", 1, 5*time.Second) {
		t.Fatalf("keepalived alone did not become MASTER:\n%s", k.Log())
	}
	a := StartAgent(t, lab, p.c.Plan("a"))
	waitState(t, a, "Active", 5*time.Second)
	if !k.WaitState("VI_51", "BACKUP", 1, 5*time.Second) {
		t.Fatalf("keepalived did not yield:\n%s", k.Log())
	}
	time.Sleep(300 * time.Millisecond)
	trA, mastersK := transitions(t, a), masters(k, "VI_51")
	macA := lab.MAC("a")
	holder := SampleHolder(t, lab, "k", vip4)
	start := time.Now()

	steps := []struct {
		name string
		mwgc *plan.Auth
		ka   *netlab.KeepalivedAuth
	}{
		{"receive-only", &plan.Auth{Mode: plan.AuthReceiveOnly, Keys: []plan.Key{{ID: 1, File: k1}}, ActiveKey: 1},
			&netlab.KeepalivedAuth{Keys: map[int]string{1: k1}, ActiveKey: 1, Mode: "receive-only"}},
		{"permissive", &plan.Auth{Mode: plan.AuthPermissive, Keys: []plan.Key{{ID: 1, File: k1}}, ActiveKey: 1},
			&netlab.KeepalivedAuth{Keys: map[int]string{1: k1}, ActiveKey: 1, Mode: "permissive"}},
		{"enforce", &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: k1}}, ActiveKey: 1},
			&netlab.KeepalivedAuth{Keys: map[int]string{1: k1}, ActiveKey: 1}},
		{"key 2 added", &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: k1}, {ID: 2, File: k2}}, ActiveKey: 1},
			&netlab.KeepalivedAuth{Keys: map[int]string{1: k1, 2: k2}, ActiveKey: 1}},
		{"key 2 active", &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: k1}, {ID: 2, File: k2}}, ActiveKey: 2},
			&netlab.KeepalivedAuth{Keys: map[int]string{1: k1, 2: k2}, ActiveKey: 2}},
		{"key 1 removed", &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 2, File: k2}}, ActiveKey: 2},
			&netlab.KeepalivedAuth{Keys: map[int]string{2: k2}, ActiveKey: 2}},
	}
	for _, st := range steps {
		p.c.Auth = st.mwgc
		WritePlan(t, a.PlanPath, p.c.Plan("a"))
		Eventually(t, 3*time.Second, st.name+": mwgc reloaded", func() (bool, string) {
			s, err := a.Status()
			if err != nil || s.Groups[0].Auth == nil {
				return false, "no auth yet"
			}
			return s.Groups[0].Auth.Mode == st.mwgc.Mode && int(s.Groups[0].Auth.ActiveKey) == st.mwgc.ActiveKey &&
				len(s.Groups[0].Auth.KeyIDs) == len(st.mwgc.Keys), s.Groups[0].Auth.Mode
		})
		p.kcfg.Instances[0].AuthHMAC = st.ka
		text, err := p.kcfg.Render()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(k.ConfigPath(), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		reloads := strings.Count(k.Log(), "Reloading ...")
		if err := k.Reload(); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 5*time.Second, st.name+": keepalived reloaded", func() (bool, string) {
			return strings.Count(k.Log(), "Reloading ...") > reloads, ""
		})
		time.Sleep(500 * time.Millisecond) // several advert intervals in the new setting
		if got := transitions(t, a); got != trA {
			t.Fatalf("%s: mwgc made %d transitions", st.name, got-trA)
		}
		if got := masters(k, "VI_51"); got != mastersK {
			t.Fatalf("%s: keepalived became MASTER:\n%s", st.name, k.Log())
		}
	}
	if err := HeldOnlyBy(holder.Since(start), macA, 3); err != nil {
		t.Errorf("the VIP moved during the roll-out: %v", err)
	}
	holder.Stop()
	// Both directions with the final key: keepalived takes over on mwgc's
	// signed priority-0 advert, and a restarted mwgc verifies keepalived's
	// key-2 adverts before it preempts.
	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !k.WaitState("VI_51", "MASTER", mastersK+1, 3*time.Second) {
		t.Fatalf("keepalived did not take over on mwgc's signed priority-0 advert:\n%s", k.Log())
	}
	a.Proc.Wait(5 * time.Second)
	a.Start(t)
	waitState(t, a, "Active", 5*time.Second)
	s, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	if peer := s.Groups[0].Peers[0]; peer.Signed == 0 || peer.LastKeyID != 2 || peer.Unsigned != 0 || peer.AuthFailures != 0 {
		t.Errorf("keepalived's adverts as mwgc saw them: %+v", peer)
	}
	if strings.Contains(k.Log(), "authentication") && strings.Contains(k.Log(), "from 192.0.2.11") &&
		(strings.Contains(k.Log(), "invalid authentication HMAC from 192.0.2.11") || strings.Contains(k.Log(), "missing authentication trailer from 192.0.2.11")) {
		t.Errorf("keepalived refused one of mwgc's adverts during the roll-out:\n%s", k.Log())
	}
}

// loseToKeepalivedThenTakeOver restarts the stopped agent a with plan p, in
// which a has priority 50: beside keepalived at 100 it must stay Backup
// beyond its Active_Down_Interval (the election), and take over when
// keepalived stops (a graceful keepalived → mwgc handover).
func loseToKeepalivedThenTakeOver(t *testing.T, a *Agent, p *plan.Plan, k *netlab.Keepalived) {
	t.Helper()
	WritePlan(t, a.PlanPath, p)
	a.Start(t)
	waitState(t, a, "Backup", 3*time.Second)
	time.Sleep(500 * time.Millisecond) // beyond a's Active_Down_Interval
	if st := a.State(); st != "Backup" {
		t.Fatalf("mwgc at 50 is %s beside keepalived at 100", st)
	}
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, "Active", 3*time.Second)
}
