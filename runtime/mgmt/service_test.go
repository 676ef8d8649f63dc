package mgmt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

var svcKey = bytes.Repeat([]byte{0x3c}, 32)

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

// loopPlan is a plan for node self at 127.0.0.1 on lo, with members at
// 127.0.0.x (all loopback addresses on Linux).
func loopPlan(t *testing.T, self string, port int, keyFile, tableFile string, members ...plan.Member) *plan.Plan {
	t.Helper()
	p := &plan.Plan{
		APIVersion: plan.APIVersion, Cluster: "edge", Node: self, Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{{Name: "lo", Segment: "mgmt", Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}},
		Management: &plan.Management{
			Interface: "lo", Address: netip.MustParseAddr("127.0.0.1"), Broadcast: netip.MustParseAddr("127.255.255.255"),
			Port: port, DiscoveryInterval: plan.Duration(100 * time.Millisecond), DeadAfter: 3,
			KeyFile: keyFile, Unauthenticated: keyFile == "", TableFile: tableFile, Members: members,
		},
	}
	d, err := plan.ComputeDigest(p)
	if err != nil {
		t.Fatal(err)
	}
	p.Digest = d
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// peerSocket sends as a member at a loopback address (from an ephemeral
// port: the plan's port on lo belongs to the service under test).
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

func (p *peerSocket) answer(node string, key []byte) []byte {
	p.t.Helper()
	p.seq++
	b, err := wire.Seal(&wire.Message{
		Header: wire.Header{Type: wire.TypeAnswer, BootID: p.boot, Seq: p.seq, Time: time.Now().UnixMilli()},
		Answer: &wire.Answer{Cluster: "edge", Node: node, Health: wire.HealthAvailable, Load: 42},
	}, key)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *peerSocket) discovery(node string, key []byte) []byte {
	p.t.Helper()
	p.seq++
	b, err := wire.Seal(&wire.Message{
		Header:    wire.Header{Type: wire.TypeDiscovery, BootID: p.boot, Seq: p.seq, Time: time.Now().UnixMilli()},
		Discovery: &wire.Discovery{Cluster: "edge", Node: node, IntervalMillis: 100},
	}, key)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func status(s *Service) Status { return s.Status().(Status) }

func rowOf(st Status, name string) engine.Node {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	return engine.Node{}
}

// eventually polls cond for up to 5 s: generous, the machine is shared.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readTable(t *testing.T, path string) TableFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tf TableFile
	if err := json.Unmarshal(b, &tf); err != nil {
		t.Fatalf("table file %s: %v\n%s", path, err, b)
	}
	return tf
}

var loopMembers = []plan.Member{
	{Name: "dir-a", Address: netip.MustParseAddr("127.0.0.1"), Director: true},
	{Name: "scan-1", Address: netip.MustParseAddr("127.0.0.2")},
	{Name: "scan-2", Address: netip.MustParseAddr("127.0.0.3")},
}

func TestServiceDirectorOnLoopback(t *testing.T) {
	netlab.Require(t) // SO_BINDTODEVICE needs root
	dir := t.TempDir()
	port := freePort(t)
	keyFile := writeKey(t, dir, svcKey)
	tableFile := filepath.Join(dir, "table.json")
	p := loopPlan(t, "dir-a", port, keyFile, tableFile, loopMembers...)
	reg := prometheus.NewRegistry()
	s, err := Start(p, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	eventually(t, "the first table file", func() bool { _, err := os.Stat(tableFile); return err == nil })
	if tf := readTable(t, tableFile); tf.Active || tf.Counts.Unseen != 3 {
		t.Errorf("table file before Active: %+v", tf)
	}

	s.SetActive(true)
	scan1 := newPeer(t, "127.0.0.2", port)
	first := scan1.answer("scan-1", svcKey)
	scan1.send(first)
	eventually(t, "scan-1 up", func() bool { return rowOf(status(s), "scan-1").Status == engine.StatusUp })
	if r := rowOf(status(s), "dir-a"); r.Status != engine.StatusUp || !r.Self {
		t.Errorf("own row %+v, want up and self", r)
	}

	// The rejects: replay, wrong key, unknown source.
	scan1.send(first)
	scan1.send(scan1.answer("scan-1", bytes.Repeat([]byte{9}, 32)))
	newPeer(t, "127.0.0.9", port).send(scan1.answer("scan-1", svcKey))
	want := map[string]uint64{"replay": 1, "auth": 1, "unknown-source": 1}
	eventually(t, "the three drops", func() bool {
		d := status(s).Stats.Drops
		return d["replay"] == 1 && d["auth"] == 1 && d["unknown-source"] == 1
	})
	for reason, n := range want {
		if got := (metricValue(t, reg, "mwgc_mgmt_drops_total", "reason", reason)); got != float64(n) {
			t.Errorf("mwgc_mgmt_drops_total{reason=%q} = %v, want %d", reason, got, n)
		}
	}
	// Our own broadcast comes back on lo: proof that discovery went out.
	eventually(t, "own discovery looped back", func() bool { return status(s).Stats.Drops["own"] > 0 })

	// scan-1 goes silent: down after 3 intervals (300 ms).
	eventually(t, "scan-1 down", func() bool { return rowOf(status(s), "scan-1").Status == engine.StatusDown })
	st := status(s)
	if r := rowOf(st, "scan-1"); r.Since.Sub(r.LastSeen) < 300*time.Millisecond {
		t.Errorf("scan-1 down %v after its last answer, before 3 intervals", r.Since.Sub(r.LastSeen))
	}
	eventually(t, "table file with scan-1 down", func() bool {
		tf := readTable(t, tableFile)
		return tf.Active && tf.Counts.Down == 1 && tf.Counts.Up == 1
	})
	if got := (metricValue(t, reg, "mwgc_mgmt_nodes", "status", "down")); got != 1 {
		t.Errorf("mwgc_mgmt_nodes{status=down} = %v", got)
	}

	// A bad update (key file gone) is refused; the service keeps running.
	bad := loopPlan(t, "dir-a", port, filepath.Join(dir, "missing.key"), tableFile, loopMembers...)
	if err := s.Update(bad); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("Update with a missing key file: %v", err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(p); err == nil || !strings.Contains(err.Error(), "chmod") {
		t.Errorf("Update with a world-readable key file: %v", err)
	}
	os.Chmod(keyFile, 0o600)
	scan1.send(scan1.answer("scan-1", svcKey))
	eventually(t, "scan-1 up again after refused updates", func() bool { return rowOf(status(s), "scan-1").Status == engine.StatusUp })

	// A good update: rotate the key (new one signs, old one verifies) and drop scan-2.
	newKey := bytes.Repeat([]byte{0x77}, 32)
	writeKey(t, dir, newKey, svcKey)
	good := loopPlan(t, "dir-a", port, keyFile, tableFile, loopMembers[:2]...)
	if err := s.Update(good); err != nil {
		t.Fatalf("Update: %v", err)
	}
	st = status(s)
	if !st.Active || len(st.Nodes) != 2 {
		t.Errorf("after update: active %v, %d rows; want Active with 2 rows", st.Active, len(st.Nodes))
	}
	scan1.send(scan1.answer("scan-1", svcKey)) // old key still accepted
	scan1.send(scan1.answer("scan-1", newKey))
	eventually(t, "answers under both keys", func() bool { return status(s).Stats.AnswersReceived >= 4 })
	if got := (metricValue(t, reg, "mwgc_mgmt_reloads_total", "result", "refused")); got != 2 {
		t.Errorf("refused reloads %v, want 2", got)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if tf := readTable(t, tableFile); tf.Active {
		t.Errorf("table file after Close still says active")
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".table.json.*")); len(entries) != 0 {
		t.Errorf("temporary table files left behind: %v", entries)
	}
}

func TestServiceAnswersDirector(t *testing.T) {
	netlab.Require(t)
	port := freePort(t)
	members := []plan.Member{
		{Name: "scan-1", Address: netip.MustParseAddr("127.0.0.1")},
		{Name: "dir-a", Address: netip.MustParseAddr("127.0.0.2"), Director: true},
	}
	s, err := Start(loopPlan(t, "scan-1", port, "", "", members...), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := status(s); st.Authenticated {
		t.Error("unauthenticated plan reported as authenticated")
	}
	d := newPeer(t, "127.0.0.2", port)
	d.send(d.discovery("dir-a", nil))
	eventually(t, "answering dir-a", func() bool {
		st := status(s)
		return len(st.Answering) == 1 && st.Answering[0] == "dir-a" && st.Stats.AnswersSent > 0
	})
	// The answer to 127.0.0.2 lands on our own socket (all of 127/8 is
	// local): it went out, from our management address.
	eventually(t, "own answer looped back", func() bool { return status(s).Stats.Drops["own"] > 0 })
	// A signed discovery is refused by an unauthenticated node.
	d.send(d.discovery("dir-a", svcKey))
	eventually(t, "auth-unexpected drop", func() bool { return status(s).Stats.Drops["auth-unexpected"] == 1 })
	// Without further discovery, scan-1 stops answering after 3 intervals.
	eventually(t, "director lost", func() bool { return len(status(s).Answering) == 0 })
}

func TestStartRefuses(t *testing.T) {
	dir := t.TempDir()
	p := loopPlan(t, "dir-a", 9, writeKey(t, dir, svcKey), "", loopMembers...)
	noMgmt := *p
	noMgmt.Management = nil
	if _, err := Start(&noMgmt, nil, nil); err == nil {
		t.Error("Start without a management section succeeded")
	}
	os.WriteFile(p.Management.KeyFile, []byte("abcd\n"), 0o600)
	if _, err := Start(p, nil, nil); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("Start with a short key: %v", err)
	}
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

// A key file that changes is picked up within a second, without a plan
// update (an unchanged plan is never reloaded); one that breaks is refused
// and the keys in use stay.
func TestServiceFollowsKeyFile(t *testing.T) {
	netlab.Require(t)
	dir := t.TempDir()
	port := freePort(t)
	keyFile := writeKey(t, dir, svcKey)
	reg := prometheus.NewRegistry()
	s, err := Start(loopPlan(t, "dir-a", port, keyFile, "", loopMembers...), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetActive(true)
	scan1 := newPeer(t, "127.0.0.2", port)
	newKey := bytes.Repeat([]byte{0x99}, 32)
	scan1.send(scan1.answer("scan-1", newKey))
	eventually(t, "answer under an unknown key dropped", func() bool { return status(s).Stats.Drops["auth"] == 1 })

	writeKey(t, dir, newKey, svcKey)
	eventually(t, "answers under the new key accepted", func() bool {
		scan1.send(scan1.answer("scan-1", newKey))
		time.Sleep(50 * time.Millisecond)
		return rowOf(status(s), "scan-1").Status == engine.StatusUp
	})
	if got := metricValue(t, reg, "mwgc_mgmt_key_reloads_total", "result", "ok"); got != 1 {
		t.Errorf("key reloads ok = %v, want 1", got)
	}

	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broken key file refused", func() bool {
		return metricValue(t, reg, "mwgc_mgmt_key_reloads_total", "result", "refused") == 1
	})
	received := status(s).Stats.AnswersReceived
	scan1.send(scan1.answer("scan-1", newKey))
	eventually(t, "the keys in use stay", func() bool { return status(s).Stats.AnswersReceived == received+1 })
}

// An update that moves the port opens the new socket beside the old one
// and swaps; one whose socket cannot be opened is refused and the old
// socket keeps working.
func TestServiceUpdateMovesSocket(t *testing.T) {
	netlab.Require(t)
	dir := t.TempDir()
	keyFile := writeKey(t, dir, svcKey)
	portA, portB := freePort(t), freePort(t)
	s, err := Start(loopPlan(t, "dir-a", portA, keyFile, "", loopMembers...), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetActive(true)
	scan1 := newPeer(t, "127.0.0.2", portA)
	scan1.send(scan1.answer("scan-1", svcKey))
	eventually(t, "answer on the first port", func() bool { return status(s).Stats.AnswersReceived == 1 })

	// A port someone else holds: refused, the old socket stays.
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	portHeld := held.LocalAddr().(*net.UDPAddr).Port
	if err := s.Update(loopPlan(t, "dir-a", portHeld, keyFile, "", loopMembers...)); err == nil {
		t.Fatal("Update to a port in use succeeded")
	}
	scan1.send(scan1.answer("scan-1", svcKey))
	eventually(t, "answer on the first port after the refused update", func() bool { return status(s).Stats.AnswersReceived == 2 })

	if err := s.Update(loopPlan(t, "dir-a", portB, keyFile, "", loopMembers...)); err != nil {
		t.Fatalf("Update to a free port: %v", err)
	}
	if st := status(s); st.Port != portB || !st.Active {
		t.Errorf("after the move: port %d active %v", st.Port, st.Active)
	}
	scan1.to.Port = portB
	scan1.send(scan1.answer("scan-1", svcKey))
	eventually(t, "answer on the new port", func() bool { return status(s).Stats.AnswersReceived == 3 })
	// The old socket is closed: its port can be bound again.
	eventually(t, "the old port free", func() bool {
		c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", portA))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
