package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// The management protocol on the agent's loop, with real UDP sockets on
// loopback (all of 127/8 is local on Linux) and the fake VRRP host.

var svcKey = bytes.Repeat([]byte{0x3c}, 32)

// loopNet is the fake host with a real management socket.
type loopNet struct{ *fakeNet }

func (loopNet) ListenMgmt(ifname string, port int) (MgmtConn, error) {
	c, err := mgmt.Listen(ifname, port)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func writeKey(t *testing.T, dir string, keys ...[]byte) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# management key\n")
	for _, k := range keys {
		b.WriteString(hex.EncodeToString(k) + "\n")
	}
	path := filepath.Join(dir, "mgmt.key")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

var loopMembers = []plan.Member{
	{Name: "dir-a", Address: netip.MustParseAddr("127.0.0.1"), Director: true},
	{Name: "scan-1", Address: netip.MustParseAddr("127.0.0.2")},
	{Name: "scan-2", Address: netip.MustParseAddr("127.0.0.3")},
}

// loopPlan is a plan for node self at 127.0.0.1 on lo, with members at
// 127.0.0.x. owner adds a VRRP group of which the node owns the VIP: it is
// Active from the start and so discovers.
func loopPlan(self string, port int, keyFile, tableFile string, owner bool, members ...plan.Member) *plan.Plan {
	p := &plan.Plan{
		APIVersion: plan.APIVersion, Cluster: "edge", Node: self, Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{{Name: "lo", Segment: "mgmt", Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}},
		Management: &plan.Management{
			Interface: "lo", Address: netip.MustParseAddr("127.0.0.1"), Broadcast: netip.MustParseAddr("127.255.255.255"),
			Port: port, DiscoveryInterval: plan.Duration(100 * time.Millisecond), DeadAfter: 3,
			KeyFile: keyFile, Unauthenticated: keyFile == "", TableFile: tableFile, Members: members,
		},
	}
	if owner {
		p.VRRP = &plan.VRRP{Priority: 255, Announce: plan.Announce{Count: 1}, Groups: []plan.Group{{
			Name: "owner", VRID: 1, Interface: "lo", Family: plan.FamilyIPv4, Version: 3,
			AdvertInterval: plan.Duration(time.Second), Checksum: plan.ChecksumRFC9568,
			Source: netip.MustParseAddr("127.0.0.1"), VIPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")},
		}}}
	}
	return p
}

func startLoop(t *testing.T, p *plan.Plan, reg *prometheus.Registry) *harness {
	t.Helper()
	netlab.Require(t) // SO_BINDTODEVICE needs root
	fn := newFakeNet()
	// Reloads come from Reload only (SIGHUP): a file event would read the
	// same plan once more and count a refusal twice.
	return startOn(t, loopNet{fn}, fn, p, reg, true)
}

// mgmtStatus is the management part of the agent's status.
func (h *harness) mgmtStatus() mgmt.Status {
	h.t.Helper()
	st, ok := h.status().Management.(mgmt.Status)
	if !ok {
		h.t.Fatal("no management status")
	}
	return st
}

// reload writes p and asks for it at once, as SIGHUP does.
func (h *harness) reload(p *plan.Plan) {
	h.t.Helper()
	h.write(p)
	h.agent.Reload()
}

// peerSocket sends as a member at a loopback address (from an ephemeral
// port: the plan's port on lo belongs to the agent under test).
type peerSocket struct {
	t    *testing.T
	c    *net.UDPConn
	to   *net.UDPAddr
	boot uint64
	seq  uint64
}

func newPeer(t *testing.T, addr string, port int) *peerSocket {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peerSocket{t: t, c: c, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, boot: 77}
}

func (p *peerSocket) send(b []byte) {
	p.t.Helper()
	if _, err := p.c.WriteToUDP(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peerSocket) message(typ wire.Type, node string, key []byte) []byte {
	p.t.Helper()
	p.seq++
	m := &wire.Message{Header: wire.Header{Type: typ, BootID: p.boot, Seq: p.seq, Time: time.Now().UnixMilli()}}
	if typ == wire.TypeAnswer {
		m.Answer = &wire.Answer{Cluster: "edge", Node: node, Health: wire.HealthAvailable, Load: 42}
	} else {
		m.Discovery = &wire.Discovery{Cluster: "edge", Node: node, IntervalMillis: 100}
	}
	b, err := wire.Seal(m, key)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *peerSocket) answer(node string, key []byte) []byte {
	return p.message(wire.TypeAnswer, node, key)
}
func (p *peerSocket) discovery(node string, key []byte) []byte {
	return p.message(wire.TypeDiscovery, node, key)
}

func rowOf(st mgmt.Status, name string) engine.Node {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	return engine.Node{}
}

func readTable(t *testing.T, path string) mgmt.TableFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tf mgmt.TableFile
	if err := json.Unmarshal(b, &tf); err != nil {
		t.Fatalf("table file %s: %v\n%s", path, err, b)
	}
	return tf
}

// metricValue gathers one series of a metric family.
func metricValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// TestManagementDirectorOnLoopback: the director's side, from a plan that
// runs the protocol alone to one that makes the node Active; drops, down
// detection, the table file, refused and applied reloads, key rotation,
// and the table file at stop.
func TestManagementDirectorOnLoopback(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	keyFile := writeKey(t, dir, svcKey)
	tableFile := filepath.Join(dir, "table.json")
	reg := prometheus.NewRegistry()
	h := startLoop(t, loopPlan("dir-a", port, keyFile, tableFile, false, loopMembers...), reg)

	h.eventually("the first table file", func() bool { _, err := os.Stat(tableFile); return err == nil })
	if tf := readTable(t, tableFile); tf.Active || tf.Counts.Unseen != 3 {
		t.Errorf("table file before Active: %+v", tf)
	}

	// A reload adds the owner's group: the node is Active at once and discovers.
	h.reload(loopPlan("dir-a", port, keyFile, tableFile, true, loopMembers...))
	h.eventually("Active", func() bool { return h.mgmtStatus().Active })
	scan1 := newPeer(t, "127.0.0.2", port)
	first := scan1.answer("scan-1", svcKey)
	scan1.send(first)
	h.eventually("scan-1 up", func() bool { return rowOf(h.mgmtStatus(), "scan-1").Status == engine.StatusUp })
	if r := rowOf(h.mgmtStatus(), "dir-a"); r.Status != engine.StatusUp || !r.Self {
		t.Errorf("own row %+v, want up and self", r)
	}

	// The rejects: replay, wrong key, unknown source.
	scan1.send(first)
	scan1.send(scan1.answer("scan-1", bytes.Repeat([]byte{9}, 32)))
	newPeer(t, "127.0.0.9", port).send(scan1.answer("scan-1", svcKey))
	want := map[string]uint64{"replay": 1, "auth": 1, "unknown-source": 1}
	h.eventually("the three drops", func() bool {
		d := h.mgmtStatus().Stats.Drops
		return d["replay"] == 1 && d["auth"] == 1 && d["unknown-source"] == 1
	})
	for reason, n := range want {
		if got := metricValue(t, reg, "mwgc_mgmt_drops_total", "reason", reason); got != float64(n) {
			t.Errorf("mwgc_mgmt_drops_total{reason=%q} = %v, want %d", reason, got, n)
		}
	}
	// Our own broadcast comes back on lo: proof that discovery went out.
	h.eventually("own discovery looped back", func() bool { return h.mgmtStatus().Stats.Drops["own"] > 0 })

	// scan-1 goes silent: down after 3 intervals (300 ms).
	h.eventually("scan-1 down", func() bool { return rowOf(h.mgmtStatus(), "scan-1").Status == engine.StatusDown })
	if r := rowOf(h.mgmtStatus(), "scan-1"); r.Since.Sub(r.LastSeen) < 300*time.Millisecond {
		t.Errorf("scan-1 down %v after its last answer, before 3 intervals", r.Since.Sub(r.LastSeen))
	}
	h.eventually("table file with scan-1 down", func() bool {
		tf := readTable(t, tableFile)
		return tf.Active && tf.Counts.Down == 1 && tf.Counts.Up == 1
	})
	if got := metricValue(t, reg, "mwgc_mgmt_nodes", "status", "down"); got != 1 {
		t.Errorf("mwgc_mgmt_nodes{status=down} = %v", got)
	}

	// A bad reload (key file gone) is refused; the protocol keeps running.
	h.reload(loopPlan("dir-a", port, filepath.Join(dir, "missing.key"), tableFile, true, loopMembers...))
	h.eventually("refused: missing key", func() bool {
		r := h.status().LastReload
		return r != nil && r.Result == "failed" && strings.Contains(r.Error, "missing.key")
	})
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	h.reload(loopPlan("dir-a", port, keyFile, tableFile, true, loopMembers[:2]...))
	h.eventually("refused: chmod", func() bool {
		r := h.status().LastReload
		return r != nil && r.Result == "failed" && strings.Contains(r.Error, "chmod")
	})
	os.Chmod(keyFile, 0o600)
	scan1.send(scan1.answer("scan-1", svcKey))
	h.eventually("scan-1 up again after refused reloads", func() bool { return rowOf(h.mgmtStatus(), "scan-1").Status == engine.StatusUp })

	// A good reload: rotate the key (new one signs, old one verifies) and drop scan-2.
	newKey := bytes.Repeat([]byte{0x77}, 32)
	writeKey(t, dir, newKey, svcKey)
	h.reload(loopPlan("dir-a", port, keyFile, tableFile, true, loopMembers[:2]...))
	h.eventually("reloaded", func() bool { return len(h.mgmtStatus().Nodes) == 2 })
	if st := h.mgmtStatus(); !st.Active {
		t.Errorf("after the reload: not Active")
	}
	scan1.send(scan1.answer("scan-1", svcKey)) // old key still accepted
	scan1.send(scan1.answer("scan-1", newKey))
	h.eventually("answers under both keys", func() bool { return h.mgmtStatus().Stats.AnswersReceived >= 4 })
	if t.Failed() {
		t.Logf("management stats: %+v", h.mgmtStatus().Stats)
	}
	// h.reload both writes the file (the watcher reads it after the
	// debounce) and forces a read: a failed plan may be tried twice.
	if got := metricValue(t, reg, "mwgc_mgmt_reloads_total", "result", "refused"); got < 2 || got > 4 {
		t.Errorf("refused reloads %v, want 2 (up to 4: each failed plan once more from the file event)", got)
	}

	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if tf := readTable(t, tableFile); tf.Active {
		t.Errorf("table file after stop still says active")
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".table.json.*")); len(entries) != 0 {
		t.Errorf("temporary table files left behind: %v", entries)
	}
}

// TestManagementAnswersDirector: a scanning node answers a director it
// hears, refuses what it cannot check, and stops when the director falls
// silent.
func TestManagementAnswersDirector(t *testing.T) {
	port := freePort(t)
	members := []plan.Member{
		{Name: "scan-1", Address: netip.MustParseAddr("127.0.0.1")},
		{Name: "dir-a", Address: netip.MustParseAddr("127.0.0.2"), Director: true},
	}
	h := startLoop(t, loopPlan("scan-1", port, "", "", false, members...), nil)
	if st := h.mgmtStatus(); st.Authenticated {
		t.Error("unauthenticated plan reported as authenticated")
	}
	d := newPeer(t, "127.0.0.2", port)
	d.send(d.discovery("dir-a", nil))
	h.eventually("answering dir-a", func() bool {
		st := h.mgmtStatus()
		return len(st.Answering) == 1 && st.Answering[0] == "dir-a" && st.Stats.AnswersSent > 0
	})
	// The answer to 127.0.0.2 lands on our own socket (all of 127/8 is
	// local): it went out, from our management address.
	h.eventually("own answer looped back", func() bool { return h.mgmtStatus().Stats.Drops["own"] > 0 })
	// A signed discovery is refused by an unauthenticated node.
	d.send(d.discovery("dir-a", svcKey))
	h.eventually("auth-unexpected drop", func() bool { return h.mgmtStatus().Stats.Drops["auth-unexpected"] == 1 })
	// Without further discovery, scan-1 stops answering after 3 intervals.
	h.eventually("director lost", func() bool { return len(h.mgmtStatus().Answering) == 0 })
}

// TestManagementShortKeyStopsStart: a first plan whose key file is short
// cannot start.
func TestManagementShortKeyStopsStart(t *testing.T) {
	netlab.Require(t)
	dir := t.TempDir()
	p := loopPlan("dir-a", freePort(t), writeKey(t, dir, svcKey), "", false, loopMembers...)
	os.WriteFile(p.Management.KeyFile, []byte("abcd\n"), 0o600)
	path := filepath.Join(dir, "plan.json")
	b, err := plan.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, b, 0o644)
	fn := newFakeNet()
	a, err := New(Config{PlanPath: path, Network: loopNet{fn}, NoWatch: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("Run with a short key: %v", err)
	}
}

// A key file that changes is picked up within a second, without a plan
// reload (an unchanged plan is never reloaded); one that breaks is refused
// and the keys in use stay.
func TestManagementFollowsKeyFile(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	keyFile := writeKey(t, dir, svcKey)
	reg := prometheus.NewRegistry()
	h := startLoop(t, loopPlan("dir-a", port, keyFile, "", true, loopMembers...), reg)
	h.eventually("Active", func() bool { return h.mgmtStatus().Active })
	scan1 := newPeer(t, "127.0.0.2", port)
	newKey := bytes.Repeat([]byte{0x99}, 32)
	scan1.send(scan1.answer("scan-1", newKey))
	h.eventually("answer under an unknown key dropped", func() bool { return h.mgmtStatus().Stats.Drops["auth"] == 1 })

	writeKey(t, dir, newKey, svcKey)
	h.eventually("answers under the new key accepted", func() bool {
		scan1.send(scan1.answer("scan-1", newKey))
		time.Sleep(50 * time.Millisecond)
		return rowOf(h.mgmtStatus(), "scan-1").Status == engine.StatusUp
	})
	if got := metricValue(t, reg, "mwgc_mgmt_key_reloads_total", "result", "ok"); got != 1 {
		t.Errorf("key reloads ok = %v, want 1", got)
	}

	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.eventually("broken key file refused", func() bool {
		return metricValue(t, reg, "mwgc_mgmt_key_reloads_total", "result", "refused") == 1
	})
	received := h.mgmtStatus().Stats.AnswersReceived
	scan1.send(scan1.answer("scan-1", newKey))
	h.eventually("the keys in use stay", func() bool { return h.mgmtStatus().Stats.AnswersReceived == received+1 })
}

// A reload that moves the port opens the new socket beside the old one
// and swaps; one whose socket cannot be opened is refused and the old
// socket keeps working.
func TestManagementReloadMovesSocket(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeKey(t, dir, svcKey)
	portA, portB := freePort(t), freePort(t)
	h := startLoop(t, loopPlan("dir-a", portA, keyFile, "", true, loopMembers...), nil)
	h.eventually("Active", func() bool { return h.mgmtStatus().Active })
	scan1 := newPeer(t, "127.0.0.2", portA)
	scan1.send(scan1.answer("scan-1", svcKey))
	h.eventually("answer on the first port", func() bool { return h.mgmtStatus().Stats.AnswersReceived == 1 })

	// A port someone else holds: refused, the old socket stays.
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	portHeld := held.LocalAddr().(*net.UDPAddr).Port
	h.reload(loopPlan("dir-a", portHeld, keyFile, "", true, loopMembers...))
	h.eventually("reload to a port in use refused", func() bool {
		r := h.status().LastReload
		return r != nil && r.Result == "failed"
	})
	scan1.send(scan1.answer("scan-1", svcKey))
	h.eventually("answer on the first port after the refused reload", func() bool { return h.mgmtStatus().Stats.AnswersReceived == 2 })

	h.reload(loopPlan("dir-a", portB, keyFile, "", true, loopMembers...))
	h.eventually("moved", func() bool { return h.mgmtStatus().Port == portB })
	if st := h.mgmtStatus(); !st.Active {
		t.Errorf("after the move: not Active")
	}
	scan1.to.Port = portB
	scan1.send(scan1.answer("scan-1", svcKey))
	h.eventually("answer on the new port", func() bool { return h.mgmtStatus().Stats.AnswersReceived == 3 })
	// The old socket is closed: its port can be bound again.
	h.eventually("the old port free", func() bool {
		c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", portA))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
