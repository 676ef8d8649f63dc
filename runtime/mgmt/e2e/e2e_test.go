// Package mgmte2e runs the management protocol end to end: real
// mwgc-agent processes in network namespaces (runtime/netlab), two
// directors running VRRP and five scanning nodes, one shared key file, and
// forged datagrams injected from inside the lab.
package mgmte2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agente2e "github.com/mwgc/mwgc/runtime/e2e"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agente2e.RemoveBuilds()
	os.Exit(code)
}

const (
	interval  = time.Second
	deadAfter = 3
	port      = 9793
)

type node struct {
	name     string
	addr     netip.Addr
	priority int // 0: scanning only
}

var cluster = []node{
	{"d1", netip.MustParseAddr("192.0.2.11"), 200},
	{"d2", netip.MustParseAddr("192.0.2.12"), 100},
	{"s1", netip.MustParseAddr("192.0.2.21"), 0},
	{"s2", netip.MustParseAddr("192.0.2.22"), 0},
	{"s3", netip.MustParseAddr("192.0.2.23"), 0},
	{"s4", netip.MustParseAddr("192.0.2.24"), 0},
	{"s5", netip.MustParseAddr("192.0.2.25"), 0},
}

// rogue is a host on the segment that the plan does not list.
const rogue = "x"

var rogueAddr = netip.MustParseAddr("192.0.2.99")

func nodeOf(name string) node {
	for _, n := range cluster {
		if n.name == name {
			return n
		}
	}
	panic("no node " + name)
}

// clusterCUE is the lab's cluster as its operator would write it: two
// directors and five scanning nodes on one protected segment.
func clusterCUE(keyFile, tableFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package clusters\n\nsegments: lan: {cidrs: [\"192.0.2.0/24\"], protected: true}\n\n")
	fmt.Fprintf(&b, "clusters: edge: {\n\tmode: \"transparent-router\"\n")
	for _, n := range cluster {
		fmt.Fprintf(&b, "\tnodes: %s: {priority: %d, managementIP: %q, interfaces: eth0: {segment: \"lan\", addresses: [%q]}}\n",
			n.name, n.priority, n.addr, n.addr)
	}
	fmt.Fprintf(&b, `	vrrp: {
		announce: {count: 2, interval: "10ms", repeatAfter: "0s"}
		groups: "inside-v4": {vrid: 51, segment: "lan", vips: ["192.0.2.100"], advertInterval: "100ms", checksum: "pseudo-header"}
	}
	management: {segment: "lan", port: %d, discoveryInterval: %q, deadAfter: %d, keyFile: %q, tableFile: %q}
}
`, port, interval.String(), deadAfter, keyFile, tableFile)
	return b.String()
}

// planFor is n's plan compiled from clusterCUE. The lab's agents share one
// file system, so each writes its own table file (the plan's path, by node).
func planFor(t *testing.T, n node, keyFile, tableDir string) *plan.Plan {
	t.Helper()
	plans, err := agente2e.CompileCUE(clusterCUE(keyFile, filepath.Join(tableDir, "table.json")))
	if err != nil {
		t.Fatal(err)
	}
	p := plans[n.name]
	p.Management.TableFile = filepath.Join(tableDir, "table-"+n.name+".json")
	return p
}

// agentStatus is the part of the agent's /status this test reads.
type agentStatus struct {
	State      string       `json:"state"`
	Management *mgmt.Status `json:"management"`
}

type lab struct {
	t      *testing.T
	lab    *netlab.Lab
	key    []byte
	keyF   string
	dir    string
	agents map[string]*agente2e.Agent
}

func newLab(t *testing.T) *lab {
	names := []string{rogue}
	for _, n := range cluster {
		names = append(names, n.name)
	}
	l := netlab.New(t, names...)
	for _, n := range cluster {
		l.AddAddr(n.name, netip.PrefixFrom(n.addr, 24).String())
	}
	l.AddAddr(rogue, netip.PrefixFrom(rogueAddr, 24).String())
	key := bytes.Repeat([]byte{0xa7}, 32)
	keyF := filepath.Join(l.Dir(), "mgmt.key")
	if err := os.WriteFile(keyF, []byte("# test key\n"+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &lab{t: t, lab: l, key: key, keyF: keyF, dir: l.Dir(), agents: map[string]*agente2e.Agent{}}
}

func (l *lab) start(name string) {
	l.t.Helper()
	if a := l.agents[name]; a != nil {
		a.Start(l.t)
		return
	}
	l.agents[name] = agente2e.StartAgent(l.t, l.lab, planFor(l.t, nodeOf(name), l.keyF, l.dir))
}

func (l *lab) status(name string) (*agentStatus, error) {
	b, err := l.agents[name].Get("/status")
	if err != nil {
		return nil, err
	}
	var s agentStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode /status of %s: %v", name, err)
	}
	if s.Management == nil {
		return nil, fmt.Errorf("%s: /status has no management section", name)
	}
	return &s, nil
}

func row(st *mgmt.Status, name string) engine.Node {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	return engine.Node{}
}

func summary(st *mgmt.Status) string {
	var b strings.Builder
	for _, n := range st.Nodes {
		fmt.Fprintf(&b, "%s=%s ", n.Name, n.Status)
	}
	return b.String()
}

// waitActive waits until director name is Active with discovery running
// and returns its status.
func (l *lab) waitActive(name string) *agentStatus {
	l.t.Helper()
	var st *agentStatus
	agente2e.Eventually(l.t, 10*time.Second, name+" Active and discovering", func() (bool, string) {
		var err error
		if st, err = l.status(name); err != nil {
			return false, err.Error()
		}
		return st.State == "Active" && st.Management.Active, fmt.Sprintf("state %s, discovery %v", st.State, st.Management.Active)
	})
	return st
}

// waitTable waits until director's table has want for every listed node.
func (l *lab) waitTable(director string, timeout time.Duration, want map[string]engine.Status) *mgmt.Status {
	l.t.Helper()
	var st *agentStatus
	agente2e.Eventually(l.t, timeout, director+"'s table", func() (bool, string) {
		var err error
		if st, err = l.status(director); err != nil {
			return false, err.Error()
		}
		for n, s := range want {
			if row(st.Management, n).Status != s {
				return false, summary(st.Management)
			}
		}
		return true, ""
	})
	return st.Management
}

// checkDiscoveredWithinOneInterval uses the director's own timestamps: its
// row was first seen when it became Active, every other one at the first
// valid answer.
func checkDiscoveredWithinOneInterval(t *testing.T, st *mgmt.Status, director string, nodes []string) {
	t.Helper()
	self := row(st, director)
	if !self.Self || self.FirstSeen.IsZero() {
		t.Fatalf("%s has no own row: %+v", director, self)
	}
	for _, n := range nodes {
		r := row(st, n)
		if d := r.FirstSeen.Sub(self.FirstSeen); d < 0 || d > interval {
			t.Errorf("%s discovered %s %v after becoming Active; want within one interval (%v)", director, n, d, interval)
		}
	}
}

func metric(t *testing.T, a *agente2e.Agent, series string) float64 {
	t.Helper()
	v, err := a.Metric(series)
	if err != nil {
		t.Fatalf("metric %s: %v", series, err)
	}
	return v
}

func TestManagementProtocolEndToEnd(t *testing.T) {
	l := newLab(t)
	scanners := []string{"s1", "s2", "s3", "s4", "s5"}

	// Scanners first: they listen, nobody discovers yet.
	for _, s := range scanners {
		l.start(s)
	}
	capture := l.lab.Capture(fmt.Sprintf("udp port %d", port))
	l.start("d1")
	l.waitActive("d1")
	everyScanner := map[string]engine.Status{}
	for _, s := range scanners {
		everyScanner[s] = engine.StatusUp
	}
	table := l.waitTable("d1", 3*interval, everyScanner)
	checkDiscoveredWithinOneInterval(t, table, "d1", scanners)

	// The backup director answers too.
	l.start("d2")
	agente2e.Eventually(t, 10*time.Second, "d2 Backup", func() (bool, string) {
		s, err := l.status("d2")
		if err != nil {
			return false, err.Error()
		}
		return s.State == "Backup", s.State
	})
	l.waitTable("d1", 3*interval, map[string]engine.Status{"d2": engine.StatusUp})

	// The table file follows, written by rename.
	agente2e.Eventually(t, 3*interval, "d1's table file", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(l.dir, "table-d1.json"))
		if err != nil {
			return false, err.Error()
		}
		var tf mgmt.TableFile
		if err := json.Unmarshal(b, &tf); err != nil {
			return false, err.Error()
		}
		return tf.Active && tf.Counts.Up == 7, fmt.Sprintf("active %v counts %+v", tf.Active, tf.Counts)
	})
	// A scanner reports its plan's digest, so rollouts can be followed.
	if r := row(l.waitTable("d1", interval, nil), "s1"); !strings.HasPrefix(r.Digest, "sha256:") || r.Health != "available" {
		t.Errorf("s1's row: %+v", r)
	}

	t.Run("rejects", func(t *testing.T) { l.rejects(t, capture) })

	// A killed scanner goes down after deadAfter intervals without an
	// answer, not before, and comes back at its next answer.
	if err := l.agents["s3"].Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	table = l.waitTable("d1", deadAfter*interval+3*time.Second, map[string]engine.Status{"s3": engine.StatusDown})
	r := row(table, "s3")
	if silent := r.Since.Sub(r.LastSeen); silent < deadAfter*interval || silent > deadAfter*interval+time.Second {
		t.Errorf("s3 marked down %v after its last answer; want %v (limit) to %v", silent, deadAfter*interval, deadAfter*interval+time.Second)
	}
	t.Logf("s3 killed; marked down %v later", time.Since(killed).Round(time.Millisecond))
	l.start("s3")
	table = l.waitTable("d1", 3*interval, map[string]engine.Status{"s3": engine.StatusUp})
	if r := row(table, "s3"); r.Restarts != 1 {
		t.Errorf("s3 after restart: %d restarts, want 1 (new boot id)", r.Restarts)
	}

	// A scanner stopped gracefully says it is leaving: down at once, long
	// before deadAfter intervals would have passed (the wait is shorter
	// than that, and the row must carry the "leaving" health).
	if err := l.agents["s5"].Proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	table = l.waitTable("d1", deadAfter*interval-500*time.Millisecond, map[string]engine.Status{"s5": engine.StatusDown})
	if r := row(table, "s5"); r.Health != "leaving" || !r.Since.Equal(r.LastSeen) {
		t.Errorf("s5 after SIGTERM: %+v; want health leaving, down at its last answer", r)
	}
	l.start("s5")
	l.waitTable("d1", 3*interval, map[string]engine.Status{"s5": engine.StatusUp})

	// The Active director dies: the new Active discovers every node within
	// one interval of taking over.
	if err := l.agents["d1"].Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	l.waitActive("d2")
	table = l.waitTable("d2", 3*interval, everyScanner)
	checkDiscoveredWithinOneInterval(t, table, "d2", scanners)
	if r := row(table, "d1"); r.Status != engine.StatusUnseen {
		t.Errorf("dead d1 in d2's table: %+v", r)
	}
	if got := table.Counts; got.Up != 6 {
		t.Errorf("d2's counts %+v, want 6 up", got)
	}
	// The scanners stop answering the dead director after deadAfter intervals.
	agente2e.Eventually(t, deadAfter*interval+3*time.Second, "scanners answer only d2", func() (bool, string) {
		for _, s := range scanners {
			st, err := l.status(s)
			if err != nil {
				return false, err.Error()
			}
			if strings.Join(st.Management.Answering, ",") != "d2" {
				return false, fmt.Sprintf("%s answers %v", s, st.Management.Answering)
			}
		}
		return true, ""
	})
}

// rejects injects a replayed answer (captured off the wire), an answer
// signed with a wrong key, and a validly signed answer from an address the
// plan does not list, and checks that d1 counts each and its table holds;
// then forged discoveries, which the scanners must ignore.
func (l *lab) rejects(t *testing.T, capture *netlab.Capture) {
	d1 := l.agents["d1"]
	before := map[string]float64{}
	for _, r := range []string{"replay", "auth", "unknown-source"} {
		before[r] = metric(t, d1, fmt.Sprintf("mwgc_mgmt_drops_total{reason=%q}", r))
	}

	// A real answer of s1 to d1, from the capture.
	pcap := capture.Stop()
	rows, err := netlab.Decode(pcap, fmt.Sprintf("ip.src == 192.0.2.21 and ip.dst == 192.0.2.11 and udp.dstport == %d", port), "data.data")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || rows[0][0] == "" {
		t.Fatalf("no answer from s1 to d1 in the capture (%d rows)", len(rows))
	}
	captured, err := hex.DecodeString(strings.ReplaceAll(rows[0][0], ":", ""))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := wire.Parse(captured); err != nil || m.Type != wire.TypeAnswer || m.Auth != wire.AuthHMACSHA256 {
		t.Fatalf("captured datagram is not a signed answer: %+v, %v", m, err)
	}
	checkCaptureAgainstSpec(t, pcap)

	forged := func(key []byte) []byte {
		b, err := wire.Seal(&wire.Message{
			Header: wire.Header{Type: wire.TypeAnswer, BootID: 0xbad, Seq: 1, Time: time.Now().UnixMilli()},
			Answer: &wire.Answer{Cluster: "edge", Node: "s1", Health: wire.HealthLeaving},
		}, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	d1addr := nodeOf("d1").addr
	// From s1's own address (its agent holds port 9793; we send from an
	// ephemeral port, which receivers do not check).
	l.inject(t, "s1", nodeOf("s1").addr, d1addr, captured)
	l.inject(t, "s1", nodeOf("s1").addr, d1addr, forged(bytes.Repeat([]byte{0x01}, 32)))
	// From a host the plan does not list, with the real key.
	l.inject(t, rogue, rogueAddr, d1addr, forged(l.key))

	// The headline threat: a host posing as a director. A discovery with
	// the real key from an unlisted address, and one from d2's address
	// with a wrong key, broadcast to every node: the scanners drop both and
	// keep answering d1 alone.
	s1 := l.agents["s1"]
	s1Before := map[string]float64{}
	for _, r := range []string{"auth", "unknown-source"} {
		s1Before[r] = metric(t, s1, fmt.Sprintf("mwgc_mgmt_drops_total{reason=%q}", r))
	}
	discovery := func(node string, key []byte) []byte {
		b, err := wire.Seal(&wire.Message{
			Header:    wire.Header{Type: wire.TypeDiscovery, BootID: 0xbad, Seq: 1, Time: time.Now().UnixMilli()},
			Discovery: &wire.Discovery{Cluster: "edge", Node: node, IntervalMillis: 1000},
		}, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bcast := netip.MustParseAddr("192.0.2.255")
	l.inject(t, rogue, rogueAddr, bcast, discovery("d2", l.key))
	l.inject(t, "d2", nodeOf("d2").addr, bcast, discovery("d2", bytes.Repeat([]byte{0x02}, 32)))
	for _, r := range []string{"auth", "unknown-source"} {
		series := fmt.Sprintf("mwgc_mgmt_drops_total{reason=%q}", r)
		agente2e.Eventually(t, 5*time.Second, "s1 "+series, func() (bool, string) {
			v := metric(t, s1, series)
			return v >= s1Before[r]+1, fmt.Sprintf("%v (before %v)", v, s1Before[r])
		})
	}
	if st, err := l.status("s1"); err != nil || strings.Join(st.Management.Answering, ",") != "d1" {
		t.Errorf("s1 answers %v after forged discoveries (%v); want d1 only", st.Management.Answering, err)
	}

	for _, r := range []string{"replay", "auth", "unknown-source"} {
		series := fmt.Sprintf("mwgc_mgmt_drops_total{reason=%q}", r)
		agente2e.Eventually(t, 5*time.Second, series, func() (bool, string) {
			v := metric(t, d1, series)
			return v >= before[r]+1, fmt.Sprintf("%v (before %v)", v, before[r])
		})
	}
	// None of them touched the table: the forged answers said "leaving".
	st, err := l.status("d1")
	if err != nil {
		t.Fatal(err)
	}
	if r := row(st.Management, "s1"); r.Status != engine.StatusUp || r.Health != "available" {
		t.Errorf("s1 after forged answers: %+v", r)
	}
	if st.Management.Stats.Drops["replay"] < 1 || st.Management.Stats.Drops["auth"] < 1 || st.Management.Stats.Drops["unknown-source"] < 1 {
		t.Errorf("/status drops %v", st.Management.Stats.Drops)
	}
}

// inject sends b to dst's management port from inside node's namespace,
// from address src (Go sets SO_BROADCAST on UDP sockets).
func (l *lab) inject(t *testing.T, nodeName string, src, dst netip.Addr, b []byte) {
	t.Helper()
	err := l.lab.Do(nodeName, func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: src.AsSlice()}, &net.UDPAddr{IP: dst.AsSlice(), Port: port})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(b)
		return err
	})
	if err != nil {
		t.Fatalf("inject from %s: %v", nodeName, err)
	}
}

// checkCaptureAgainstSpec decodes the capture with the Wireshark dissector
// written from the specification (runtime/mgmt/wireshark): every datagram
// must be a version-1 message signed with HMAC-SHA256, discoveries from d1
// to the broadcast address with increasing sequence numbers, answers to d1
// naming the member at their source address and carrying its address.
func checkCaptureAgainstSpec(t *testing.T, pcap string) {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-n", "-X", "lua_script:../wireshark/mwgc_mgmt.lua",
		"-Y", fmt.Sprintf("udp.port == %d", port), "-T", "fields", "-E", "separator=/t",
		"-e", "ip.src", "-e", "ip.dst", "-e", "mwgc_mgmt.version", "-e", "mwgc_mgmt.type", "-e", "mwgc_mgmt.auth",
		"-e", "mwgc_mgmt.seq", "-e", "mwgc_mgmt.node", "-e", "mwgc_mgmt.interval", "-e", "mwgc_mgmt.health",
		"-e", "mwgc_mgmt.addr").Output()
	if err != nil {
		t.Fatalf("tshark with the dissector: %v", err)
	}
	var discoveries, answers int
	lastSeq := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		for len(f) < 10 {
			f = append(f, "")
		}
		src, dst, version, typ, auth, seqText, name, iv, health, addr := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]
		if version != "1" || auth != "1" {
			t.Errorf("%s -> %s: version %q auth %q, want 1 and 1 (HMAC-SHA256)", src, dst, version, auth)
			continue
		}
		var seq uint64
		fmt.Sscan(seqText, &seq)
		if seq <= lastSeq[src] {
			t.Errorf("%s: sequence %d after %d", src, seq, lastSeq[src])
		}
		lastSeq[src] = seq
		switch typ {
		case "1":
			discoveries++
			if src != "192.0.2.11" || dst != "192.0.2.255" || name != "d1" || iv != "1000" {
				t.Errorf("discovery %s -> %s from %q interval %q; want d1 to 192.0.2.255, 1000 ms", src, dst, name, iv)
			}
		case "2":
			answers++
			var n node
			for _, c := range cluster {
				if c.name == name {
					n = c
				}
			}
			if !n.addr.IsValid() || src != n.addr.String() || health != "1" || addr != netip.PrefixFrom(n.addr, 24).String() {
				t.Errorf("answer %s -> %s: node %q health %q address %q", src, dst, name, health, addr)
			}
		default:
			t.Errorf("%s -> %s: not decoded as the management protocol: %q", src, dst, line)
		}
	}
	if discoveries == 0 || answers < 5 {
		t.Errorf("decoded %d discoveries and %d answers; want some of each", discoveries, answers)
	}
}
