package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
	"github.com/mwgc/mwgc/runtime/vrrpwatch"
)

var (
	vip4      = netip.MustParseAddr("192.0.2.100")
	clientNet = "192.0.2.50/24"
)

// writeKeyFile writes a fresh key in keepalived's format, mode 0600.
func writeKeyFile(t testing.TB, path string) []byte {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("hex:"+hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return k
}

// forgedAdvert is an advert a third host builds in src's name.
func forgedAdvert(t testing.TB, src netip.Addr, prio uint8, intervalCS uint16) []byte {
	t.Helper()
	dst := vrrp.GroupIPv4
	form := vrrp.ChecksumPseudoHeader
	v := vip4
	if src.Is6() {
		dst, form, v = vrrp.GroupIPv6, vrrp.ChecksumIPv6, netip.MustParseAddr("2001:db8::100")
	}
	a := &vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: prio, MaxAdvertInterval: intervalCS, Addresses: []netip.Addr{v}}
	b, err := a.Marshal(src, dst, form)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withBadTrailer appends a trailer with a fresh timestamp and a MAC that
// is not the HMAC of any key.
func withBadTrailer(msg []byte) []byte {
	tr := auth.Trailer{Type: auth.TypeHMACSHA256, KeyID: 1, Seq: auth.SeqAt(time.Now())}
	rand.Read(tr.MAC[:])
	return tr.Append(append([]byte(nil), msg...))
}

func sendN(t testing.TB, f *netlab.Forger, src netip.Addr, n int, every time.Duration, payload func() []byte) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := f.SendVRRP(src, 255, payload()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every)
	}
}

func waitMetric(t *testing.T, a *Agent, series string, atLeast float64, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, a.Node+" "+series, func() (bool, string) {
		v, err := a.Metric(series)
		if err != nil {
			return false, err.Error()
		}
		if v >= atLeast {
			return true, ""
		}
		body, _ := a.Get("/metrics")
		var lines []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.Contains(l, "drops_total{") || strings.Contains(l, "received_total{") {
				lines = append(lines, l)
			}
		}
		return false, fmt.Sprintf("%v; %s", v, strings.Join(lines, "; "))
	})
}

// waitAlarm waits for an alarm of kind about addr that lists the given
// MAC in a's /status.
func waitAlarm(t *testing.T, a *Agent, kind string, addr netip.Addr, mac string, timeout time.Duration) node.AlarmStatus {
	t.Helper()
	var found node.AlarmStatus
	Eventually(t, timeout, a.Node+" alarm "+kind+" "+addr.String(), func() (bool, string) {
		s, err := a.Status()
		if err != nil {
			return false, err.Error()
		}
		for _, al := range s.Alarms {
			if al.Kind != kind || al.Address != addr.String() {
				continue
			}
			for _, m := range al.MACs {
				if m.MAC == mac {
					found = al
					return true, ""
				}
			}
		}
		return false, "alarms: " + alarmList(s.Alarms)
	})
	return found
}

func alarmList(as []node.AlarmStatus) string {
	var parts []string
	for _, a := range as {
		var macs []string
		for _, m := range a.MACs {
			macs = append(macs, m.MAC)
		}
		parts = append(parts, a.Kind+" "+a.Address+" "+strings.Join(macs, ","))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// sniffLast reads the adverts x hears from src until stop is closed and
// returns the last one's VRRP payload (IPv4, no options).
func sniffLast(t *testing.T, lab *netlab.Lab, node string, src netip.Addr, stop <-chan struct{}) <-chan []byte {
	t.Helper()
	var w *vrrpwatch.Watcher
	if err := lab.Do(node, func() (err error) { w, err = vrrpwatch.Listen("eth0"); return err }); err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte, 1)
	go func() {
		<-stop
		w.Close()
	}()
	go func() {
		var last []byte
		buf := make([]byte, 128)
		var f vrrpwatch.Frame
		for w.Read(buf, &f) == nil {
			if f.Src == src {
				last = append(last[:0], buf[14+20:14+20+12+auth.TrailerLen]...)
			}
		}
		out <- last
	}()
	return out
}

// TestAuthForgeries: two directors with authentication enforced (window
// 1 s). From a third host: a replay of the Backup's captured advert inside
// the window, priority 255 in the Backup's name without a trailer and with
// a bad one, priority 0 in the Active's name, and the captured advert
// again outside the window. Each is dropped under its own reason and
// raises an alarm naming the forger's MAC; no transition anywhere, and a
// client asking for the VIP every 10 ms is always answered by the Active.
func TestAuthForgeries(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	key := filepath.Join(lab.Dir(), "vrrp-1.key")
	writeKeyFile(t, key)
	cl := pair()
	cl.Auth = &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: key}}, ActiveKey: 1, Window: plan.Duration(time.Second)}
	cl.SetupAddresses(lab)
	lab.AddAddr("c", clientNet)
	addrA, addrB := cl.Director("a").Addr4(), cl.Director("b").Addr4()
	macX := lab.MAC("x")

	// b alone first, so that the attacker can capture one of its adverts.
	stopSniff := make(chan struct{})
	captured := sniffLast(t, lab, "x", addrB, stopSniff)
	b := StartAgent(t, lab, cl.Plan("b"))
	waitState(t, b, "Active", 5*time.Second)
	a := StartAgent(t, lab, cl.Plan("a"))
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 3*time.Second)
	close(stopSniff)
	old := <-captured
	capturedAt := time.Now()
	if len(old) != 12+auth.TrailerLen {
		t.Fatalf("captured %d bytes from b, want a signed advert", len(old))
	}
	trA, trB := transitions(t, a), transitions(t, b)
	holder := SampleHolder(t, lab, "c", vip4)
	start := time.Now()
	f := lab.Forger("x", "")

	sendN(t, f, addrB, 5, 20*time.Millisecond, func() []byte { return old })
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v4",reason="auth-replay"}`, 5, 2*time.Second)

	sendN(t, f, addrB, 20, 20*time.Millisecond, func() []byte { return forgedAdvert(t, addrB, 255, 10) })
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v4",reason="auth-missing"}`, 20, 2*time.Second)

	sendN(t, f, addrB, 20, 20*time.Millisecond, func() []byte { return withBadTrailer(forgedAdvert(t, addrB, 255, 10)) })
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v4",reason="auth-bad-mac"}`, 20, 2*time.Second)

	sendN(t, f, addrA, 20, 20*time.Millisecond, func() []byte { return forgedAdvert(t, addrA, 0, 10) })
	waitMetric(t, b, `mwgc_agent_drops_total{group="inside-v4",reason="auth-missing"}`, 20, 2*time.Second)

	time.Sleep(time.Until(capturedAt.Add(2500 * time.Millisecond)))
	sendN(t, f, addrB, 5, 20*time.Millisecond, func() []byte { return old })
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v4",reason="auth-stale"}`, 5, 2*time.Second)

	// Alarms: a sees forgeries in b's name fail, and its own address used;
	// b sees forgeries in a's name fail. Each names x's MAC.
	al := waitAlarm(t, a, "auth-failure", addrB, macX, 2*time.Second)
	if al.Count < 50 || al.Where != "inside-v4" {
		t.Errorf("a's auth-failure alarm: %+v", al)
	}
	waitAlarm(t, a, "own-address", addrA, macX, 2*time.Second)
	waitAlarm(t, b, "auth-failure", addrA, macX, 2*time.Second)

	time.Sleep(300 * time.Millisecond)
	if got := transitions(t, a); got != trA {
		t.Errorf("a made %d transitions under attack", got-trA)
	}
	if got := transitions(t, b); got != trB {
		t.Errorf("b made %d transitions under attack", got-trB)
	}
	if err := HeldOnlyBy(holder.Since(start), lab.MAC("a"), 3); err != nil {
		t.Errorf("the VIP moved: %v", err)
	}
	t.Logf("%d holder samples over %v, all answered by a", len(holder.Since(start)), time.Since(start).Round(time.Millisecond))
}

// TestPolicyWithoutAuth: no authentication, the plan as policy. Priority
// 255 in the Backup's name (not the owner) is dropped and moves nothing;
// an advert with the Active's own address raises the own-address alarm on
// a default host; a forged 40.95 s interval in the Active's name does not
// stop the Backup from taking over within the planned
// Active_Down_Interval when the Active then dies.
func TestPolicyWithoutAuth(t *testing.T) {
	lab := netlab.New(t, "a", "b", "x", "c")
	cl := pair()
	a, b := startPair(t, lab, cl)
	addrA, addrB := cl.Director("a").Addr4(), cl.Director("b").Addr4()
	macX := lab.MAC("x")
	trA, trB := transitions(t, a), transitions(t, b)
	holder := SampleHolder(t, lab, "c", vip4)
	start := time.Now()
	f := lab.Forger("x", "")

	sendN(t, f, addrB, 30, 20*time.Millisecond, func() []byte { return forgedAdvert(t, addrB, 255, 10) })
	waitMetric(t, a, `mwgc_agent_drops_total{group="inside-v4",reason="not-owner"}`, 30, 2*time.Second)

	sent := time.Now()
	sendN(t, f, addrA, 1, 0, func() []byte { return forgedAdvert(t, addrA, 100, 10) })
	al := waitAlarm(t, a, "own-address", addrA, macX, time.Second)
	t.Logf("own-address alarm %v after the forged advert (advert interval 100ms)", al.Since.Sub(sent).Round(time.Microsecond))
	if d := al.Since.Sub(sent); d > 100*time.Millisecond {
		t.Errorf("own-address detected %v after the forgery, more than one advert interval", d)
	}
	if got := transitions(t, a) + transitions(t, b); got != trA+trB {
		t.Errorf("%d transitions under the forgeries", got-trA-trB)
	}
	if err := HeldOnlyBy(holder.Since(start), lab.MAC("a"), 3); err != nil {
		t.Errorf("the VIP moved: %v", err)
	}

	// The forged long interval, then the Active dies.
	sendN(t, f, addrA, 1, 0, func() []byte { return forgedAdvert(t, addrA, 200, 4095) })
	time.Sleep(20 * time.Millisecond)
	killed := time.Now()
	if err := a.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, "Active", 10*time.Second)
	took := time.Since(killed)
	bound := ActiveDownInterval(100, 100*time.Millisecond)
	t.Logf("b took over %v after a died (planned Active_Down_Interval %v; the forged interval would have meant %v)",
		took.Round(time.Millisecond), bound, ActiveDownInterval(100, 40950*time.Millisecond))
	if took > bound+500*time.Millisecond {
		t.Errorf("takeover after %v: the forged interval silenced the group beyond the bound %v", took, bound)
	}
	if v, _ := b.Metric(`mwgc_agent_policy_disagreements_total{group="inside-v4",peer="192.0.2.11",reason="interval"}`); v < 1 {
		t.Errorf("the forged interval was not counted as a disagreement")
	}
	_ = syscall.SIGKILL
}

// TestKeyRotation walks docs/security.md's key rotation on two agents as
// plan reloads (key 2 added, made active, key 1 removed), then replaces
// key 2's file in place. No restart, no transition, and the client always
// finds the VIP at the Active.
func TestKeyRotation(t *testing.T) {
	lab := netlab.New(t, "a", "b", "c")
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "vrrp-1.key"), filepath.Join(dir, "vrrp-2.key")
	writeKeyFile(t, k1)
	writeKeyFile(t, k2)
	cl := pair()
	cl.RolloutGrace = 2 * time.Second
	cl.Auth = &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: k1}}, ActiveKey: 1}
	cl.SetupAddresses(lab)
	lab.AddAddr("c", clientNet)
	a := StartAgent(t, lab, cl.Plan("a"))
	b := StartAgent(t, lab, cl.Plan("b"))
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 5*time.Second)
	trA, trB := transitions(t, a), transitions(t, b)
	pidA, pidB := a.Proc.Pid(), b.Proc.Pid()
	holder := SampleHolder(t, lab, "c", vip4)
	start := time.Now()
	for _, step := range []*plan.Auth{
		{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: k1}, {ID: 2, File: k2}}, ActiveKey: 1},
		{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: k1}, {ID: 2, File: k2}}, ActiveKey: 2},
		{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 2, File: k2}}, ActiveKey: 2},
	} {
		cl.Auth = step
		for _, ag := range []*Agent{a, b} {
			WritePlan(t, ag.PlanPath, cl.Plan(ag.Node))
		}
		for _, ag := range []*Agent{a, b} {
			Eventually(t, 3*time.Second, ag.Node+" on the new keys", func() (bool, string) {
				s, err := ag.Status()
				if err != nil || s.Groups[0].Auth == nil {
					return false, "no status"
				}
				au := s.Groups[0].Auth
				return int(au.ActiveKey) == step.ActiveKey && len(au.KeyIDs) == len(step.Keys), ""
			})
		}
		time.Sleep(300 * time.Millisecond)
	}
	// b hears a sign with key 2.
	Eventually(t, 2*time.Second, "b verifies key 2", func() (bool, string) {
		s, err := b.Status()
		if err != nil {
			return false, err.Error()
		}
		return s.Groups[0].Peers[0].LastKeyID == 2, ""
	})
	// Key 2's file replaced in place: both re-read it within a second.
	writeKeyFile(t, k2)
	for _, ag := range []*Agent{a, b} {
		Eventually(t, 3*time.Second, ag.Node+" reads the changed key file", func() (bool, string) {
			return strings.Contains(ag.Proc.Log(), "VRRP key file changed"), ""
		})
	}
	time.Sleep(2 * cl.RolloutGrace) // through the grace of the previous secret
	if got := transitions(t, a) + transitions(t, b); got != trA+trB {
		t.Errorf("%d transitions during the rotation", got-trA-trB)
	}
	if a.Proc.Pid() != pidA || b.Proc.Pid() != pidB || a.Proc.Exited() || b.Proc.Exited() {
		t.Errorf("an agent restarted")
	}
	for _, ag := range []*Agent{a, b} {
		if v, _ := ag.Metric(`mwgc_agent_drops_total{group="inside-v4",reason="auth-bad-mac"}`); v != 0 {
			t.Errorf("%s refused %v adverts during the rotation", ag.Node, v)
		}
	}
	if err := HeldOnlyBy(holder.Since(start), lab.MAC("a"), 3); err != nil {
		t.Errorf("the VIP moved during the rotation: %v", err)
	}
}
