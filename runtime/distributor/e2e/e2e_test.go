// Package e2e runs traffic distribution end to end: plans compiled from
// CUE, real mwgc-agent processes in network namespaces, a client namespace
// with 100 source addresses, stand-in proxies answering with their node's
// name.
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/distributor"
	agente2e "github.com/mwgc/mwgc/runtime/e2e"
	"github.com/mwgc/mwgc/runtime/forward/fwdtest"
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
	cluster   = "dist"
	interval  = 200 * time.Millisecond // discovery
	deadAfter = 3
	deadTime  = deadAfter * interval
)

var (
	vip     = netip.MustParseAddr("192.0.2.100")
	service = netip.AddrPortFrom(vip, 80)
	addrs   = map[string]string{"da": "192.0.2.1", "db": "192.0.2.2", "s1": "192.0.2.11", "s2": "192.0.2.12", "s3": "192.0.2.13", "s4": "192.0.2.14"}
	sharers = []string{"da", "db", "s1", "s2"} // the four nodes that can take traffic
)

// clusterCUE: two directors and four scanners; s3 will have no proxy and
// s4 is a forger that reports a broadcast MAC.
func clusterCUE(keyFile string) string {
	var nodes strings.Builder
	for _, n := range []string{"da", "db", "s1", "s2", "s3", "s4"} {
		prio := map[string]int{"da": 200, "db": 100}[n]
		fmt.Fprintf(&nodes, "\t\t%q: {priority: %d, managementIP: %q, interfaces: eth0: {segment: \"lan\", addresses: [%q]}}\n", n, prio, addrs[n], addrs[n])
	}
	return fmt.Sprintf(`package clusters

segments: lan: {cidrs: ["192.0.2.0/24"], protected: true}

clusters: %s: {
	mode: "ha-proxy"
	nodes: {
%s	}
	vrrp: groups: web: {vrid: 61, segment: "lan", vips: ["%s"], advertInterval: "200ms"}
	management: {segment: "lan", keyFile: %q, discoveryInterval: "%s", deadAfter: %d}
	distribution: {vips: ["%s"], ports: [80, 443], proxyPort: 9090}
}
`, cluster, nodes.String(), vip, keyFile, interval, deadAfter, vip)
}

type lab struct {
	t       *testing.T
	l       *netlab.Lab
	plans   map[string]*plan.Plan
	agents  map[string]*agente2e.Agent
	clients []netip.Addr
	key     []byte
}

func newLab(t *testing.T) *lab {
	netlab.Require(t, "ip", "nft", "tshark")
	l := netlab.New(t, "c", "da", "db", "s1", "s2", "s3", "s4")
	// A learning bridge, as a real switch: forwarded frames must not
	// teach it the clients' MACs on a director's port.
	l.Run("sw", "ip", "link", "set", "br0", "type", "bridge", "ageing_time", "30000")
	x := &lab{t: t, l: l, plans: map[string]*plan.Plan{}, agents: map[string]*agente2e.Agent{}}
	x.key = make([]byte, 32)
	rand.Read(x.key)
	keyFile := filepath.Join(l.Dir(), "mgmt.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(x.key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(l.Dir(), "repo")
	os.MkdirAll(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "cluster.cue"), []byte(clusterCUE(keyFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Load([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	nps, err := res.Plans()
	if err != nil {
		t.Fatalf("compile: %v %v", err, res.Findings)
	}
	for _, np := range nps {
		x.plans[np.Node] = np.Plan
	}
	for n, a := range addrs {
		l.AddAddr(n, a+"/24")
	}
	x.clients = fwdtest.Clients(t, l, "c", netip.MustParseAddr("192.0.2.128"), 100, 24)
	return x
}

func (x *lab) start(node string) {
	if a := x.agents[node]; a != nil {
		a.Start(x.t)
		return
	}
	x.agents[node] = agente2e.StartAgent(x.t, x.l, x.plans[node])
}

// status is the agent's /status with the distribution decoded.
type status struct {
	State        string              `json:"state"`
	Distribution *distributor.Status `json:"distribution"`
	Management   table               `json:"management"`
}

// table is the part of the management status the test reads.
type table struct {
	Nodes []engine.Node `json:"nodes"`
}

func (t table) row(name string) engine.Node {
	for _, r := range t.Nodes {
		if r.Name == name {
			return r
		}
	}
	return engine.Node{}
}

func (x *lab) status(node string) (*status, error) {
	b, err := x.agents[node].Get("/status")
	if err != nil {
		return nil, err
	}
	var s status
	return &s, json.Unmarshal(b, &s)
}

// dist waits until node's distribution satisfies cond and returns it.
func (x *lab) dist(node, what string, timeout time.Duration, cond func(*distributor.Status) bool) *distributor.Status {
	x.t.Helper()
	var last *distributor.Status
	agente2e.Eventually(x.t, timeout, what, func() (bool, string) {
		s, err := x.status(node)
		if err != nil || s.Distribution == nil {
			return false, fmt.Sprint(err)
		}
		last = s.Distribution
		return cond(last), fmt.Sprintf("%+v", *last)
	})
	return last
}

func eligible(s *distributor.Status, names ...string) bool {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, n := range s.Nodes {
		if n.Eligible != want[n.Name] {
			return false
		}
	}
	return !s.Hold && s.Active
}

func reason(s *distributor.Status, node string) string {
	for _, n := range s.Nodes {
		if n.Name == node {
			return n.Reason
		}
	}
	return "?"
}

// model is where the Go model puts every client for the given nodes.
func (x *lab) model(nodes ...string) (map[netip.Addr]string, string) {
	var bs []distrib.Backend
	for _, n := range nodes {
		bs = append(bs, distrib.Backend{Name: n, Weight: 1})
	}
	tb := distrib.Build(bs, x.plans["da"].Distribution.Slots)
	out := map[netip.Addr]string{}
	for _, c := range x.clients {
		out[c] = distrib.ClientNode(tb, c, x.plans["da"].Distribution.Seed)
	}
	return out, tb.Digest()
}

// ask asks from every client. The client first forgets the VIP's MAC: on
// a loaded machine a backup director may become Active for a moment (a
// VRRP flap) and its gratuitous ARP would leave the clients sending to it
// after it stepped back, until the Active re-announces (issue 9) or the
// entry expires. The subject here is the mapping, so each round resolves
// the VIP afresh.
func (x *lab) ask() map[netip.Addr]string {
	x.l.Run("c", "ip", "neigh", "flush", "to", vip.String())
	return fwdtest.AskAll(x.l, "c", x.clients, service, 2*time.Second)
}

// forger answers discovery as s4 with the real key but a MAC of its
// choosing (*mac, changed by the test): a member announcing nonsense.
func (x *lab) forger(stop chan struct{}, mac *atomic.Pointer[[6]byte]) {
	x.l.Do("s4", func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addrs["s4"]), Port: 9793})
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			boot := uint64(time.Now().UnixNano()) | 1
			for seq := uint64(1); ; seq++ {
				m := &wire.Message{
					Header: wire.Header{Version: wire.Version2, Type: wire.TypeAnswer, BootID: boot, Seq: seq, Time: time.Now().UnixMilli()},
					Answer: &wire.Answer{Cluster: cluster, Node: "s4", Health: wire.HealthAvailable,
						Report: &wire.Report{Serving: true, MAC: *mac.Load()}},
				}
				b, _ := wire.Seal(m, x.key)
				for _, d := range []string{addrs["da"], addrs["db"]} {
					c.WriteToUDP(b, &net.UDPAddr{IP: net.ParseIP(d), Port: 9793})
				}
				select {
				case <-stop:
					return
				case <-time.After(interval):
				}
			}
		}()
		return nil
	})
}

func TestDistributionEndToEnd(t *testing.T) {
	x := newLab(t)
	proxies := map[string]*fwdtest.Proxy{}
	for _, n := range sharers {
		proxies[n] = fwdtest.Serve(t, x.l, n, "0.0.0.0:9090")
	}
	// The answers are unicast to the Active: captured on da itself (the
	// switch learns, so the lab's observer sees no unicast).
	pcap := filepath.Join(x.l.Dir(), "mgmt.pcap")
	dump := x.l.Start("da", "tcpdump", "-Z", "root", "-i", "eth0", "-n", "-U", "--immediate-mode", "-w", pcap, "udp port 9793")
	if !dump.WaitLog("listening on", 5*time.Second) {
		t.Fatalf("tcpdump in da: %s", dump.Log())
	}
	for _, n := range []string{"da", "db", "s1", "s2", "s3"} {
		x.start(n)
	}
	stop := make(chan struct{})
	defer close(stop)
	var forged atomic.Pointer[[6]byte]
	forged.Store(&[6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	x.forger(stop, &forged)

	// 1. da Active, every sharer eligible; s3 (no proxy) and s4 (broadcast MAC) not.
	st := x.dist("da", "da distributes over the four sharers", 10*time.Second, func(s *distributor.Status) bool {
		return eligible(s, sharers...) && reason(s, "s4") == distrib.ReasonBadMAC && reason(s, "s3") == distrib.ReasonProxyClosed
	})
	want, digest := x.model(sharers...)
	if st.Digest != digest {
		t.Errorf("da's mapping digest %s, the model's %s", st.Digest, digest)
	}

	// s4 now announces a plausible unicast MAC that is not its own: the
	// director's ARP entry for s4 (made when s4 resolved the director to
	// answer it) disagrees.
	forged.Store(&[6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee})
	x.dist("da", "s4 with another host's MAC", 5*time.Second, func(s *distributor.Status) bool {
		return reason(s, "s4") == distrib.ReasonMACMismatch && eligible(s, sharers...)
	})

	// 2. Spread and stickiness: every client where the model says, twice.
	first := x.ask()
	for _, c := range x.clients {
		if first[c] != want[c] {
			s, _ := x.status("da")
			t.Logf("da: %s", x.l.Run("da", "sh", "-c", "nft list ruleset | grep -v ' : ' | head -40; nft list map netdev mwgc-distrib slots | grep -c ' : '"))
			t.Logf("db: %s", x.l.Run("db", "sh", "-c", "nft list ruleset; ip -br addr"))
			t.Fatalf("client %v answered by %q, the model says %q; da's distribution now %+v", c, first[c], want[c], s.Distribution)
		}
	}
	counts := fwdtest.Tally(first)
	t.Logf("spread of 100 clients over 4 nodes: %v, max/min %.2f (a hash spreads 100 clients like dice: median 1.47 over seeds, runtime/distrib)",
		counts, fwdtest.Spread(counts, sharers))
	if again := x.ask(); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatal("clients changed node between two rounds")
	}

	// The capture, decoded with the dissector: s1's answers carry its MAC
	// and "serving".
	time.Sleep(2 * interval) // a few more answers in flight
	dump.Signal(syscall.SIGINT)
	if err := dump.Wait(5 * time.Second); err != nil {
		t.Logf("tcpdump: %v", err)
	}
	out, err := exec.Command("tshark", "-r", pcap, "-n", "-X", "lua_script:../../mgmt/wireshark/mwgc_mgmt.lua",
		"-Y", `mwgc_mgmt.node == "s1" && mwgc_mgmt.type == 2`, "-T", "fields", "-E", "separator=/t",
		"-e", "mwgc_mgmt.version", "-e", "mwgc_mgmt.serving", "-e", "mwgc_mgmt.hwaddr").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || lines[0] == "" {
		all, _ := exec.Command("tshark", "-r", pcap, "-n").CombinedOutput()
		t.Fatalf("decoding s1's answers with the dissector: %v %q; the capture: %.2000s; tcpdump: %s", err, out, all, dump.Log())
	}
	if r := strings.Split(lines[len(lines)-1], "\t"); len(r) != 3 || r[0] != "2" || (r[1] != "1" && r[1] != "True") || !strings.EqualFold(r[2], x.l.MAC("s1")) {
		t.Errorf("s1's last answer decodes as %q, want version 2, serving, MAC %s", r, x.l.MAC("s1"))
	}

	// 3. s1 killed: out of the table one dead time after its last
	// answer, and out of the kernel's map right after; only its clients
	// move. Judged on the director's own clock (its status), so that a
	// loaded machine delays the whole agent, not the verdict.
	killed := time.Now()
	x.agents["s1"].Proc.Kill()
	st = x.dist("da", "s1 out", deadTime+interval+10*time.Second, func(s *distributor.Status) bool { return eligible(s, "da", "db", "s2") })
	took := time.Since(killed)
	ds, err := x.status("da")
	if err != nil {
		t.Fatal(err)
	}
	row := ds.Management.row("s1")
	t.Logf("s1 out of the mapping %v after its kill; on da's clock: marked down %v after its last answer (dead time %v), mapping committed %v later",
		took.Round(time.Millisecond), row.Since.Sub(row.LastSeen).Round(time.Millisecond), deadTime, ds.Distribution.Applied.Sub(row.Since).Round(time.Millisecond))
	if d := row.Since.Sub(row.LastSeen); d < deadTime || d > deadTime+interval {
		t.Errorf("s1 marked down %v after its last answer; dead time is %v", d, deadTime)
	}
	if d := ds.Distribution.Applied.Sub(row.Since); d < 0 || d > time.Second {
		t.Errorf("the mapping without s1 was committed %v after s1 was marked down", d)
	}
	without := x.ask()
	moved := 0
	for _, c := range x.clients {
		if without[c] != first[c] {
			moved++
			if first[c] != "s1" {
				t.Errorf("client %v moved from %s to %s though only s1 died", c, first[c], without[c])
			}
		}
		if without[c] == "" {
			t.Errorf("client %v unanswered with s1 down", c)
		}
	}
	t.Logf("s1 down: %d of 100 clients moved (s1 had %d)", moved, counts["s1"])

	// 4. s1 back: its clients, and only they, return (about 1/N).
	x.start("s1")
	x.dist("da", "s1 back", 5*time.Second, func(s *distributor.Status) bool { return eligible(s, sharers...) })
	back := x.ask()
	moved = 0
	for _, c := range x.clients {
		if back[c] != without[c] {
			moved++
		}
		if back[c] != first[c] {
			t.Errorf("client %v on %s after s1 came back, was on %s", c, back[c], first[c])
		}
	}
	t.Logf("s1 back: %d of 100 clients moved (ideal 1/4 = 25)", moved)

	// 5. The Active dies (agent killed, link cut) during a long download.
	var dlClient netip.Addr
	for _, c := range x.clients {
		if first[c] == "s2" {
			dlClient = c
			break
		}
	}
	const size = 8 << 20
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() { done <- x.download(dlClient, size, started) }()
	<-started
	time.Sleep(300 * time.Millisecond)
	x.agents["da"].Proc.Kill()
	x.l.LinkDown("da")
	x.dist("db", "db distributes without da", 10*time.Second, func(s *distributor.Status) bool { return eligible(s, "db", "s1", "s2") })
	tookOver := time.Now()
	select {
	case err := <-done:
		t.Fatalf("the download ended (%v) before db had taken over: it did not span the failover", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatalf("the download through the VIP across the failover: %v", err)
	}
	t.Logf("a %d MiB download from a client on s2 completed %v after db took over", size>>20, time.Since(tookOver).Round(time.Millisecond))
	after := x.ask()
	wantAfter, _ := x.model("db", "s1", "s2")
	for _, c := range x.clients {
		if after[c] != wantAfter[c] {
			t.Errorf("after the failover client %v on %q, the model says %q", c, after[c], wantAfter[c])
		}
		if first[c] != "da" && after[c] != first[c] {
			t.Errorf("client %v moved from %s to %s at the failover", c, first[c], after[c])
		}
	}
	if s := x.dist("db", "db", time.Second, func(*distributor.Status) bool { return true }); reason(s, "s4") != distrib.ReasonMACMismatch || reason(s, "s3") != distrib.ReasonProxyClosed {
		t.Errorf("new Active: s3 %q, s4 %q", reason(s, "s3"), reason(s, "s4"))
	}
	for _, n := range []string{"s3", "s4"} {
		if counts[n] != 0 || fwdtest.Tally(after)[n] != 0 {
			t.Errorf("%s got traffic", n)
		}
	}

	// The scanning nodes answer the clients from the VIP (l2, replies do
	// not pass the director) and the killed director's kernel kept the
	// VIP: neither may count as someone claiming it.
	if b, err := x.agents["db"].Get("/status"); err != nil || strings.Contains(string(b), `"kind":"vip-claim"`) {
		t.Errorf("the Active raised a vip-claim alarm (%v): %s", err, b)
	}

	// 6. Stop (SIGTERM) removes the tables: the Active's forwarding and a
	// node's redirect; nothing else in the ruleset is touched.
	for _, n := range []string{"db", "s2"} {
		x.l.Run(n, "nft", "add", "table", "inet", "someone-else")
		if tabs := x.l.Run(n, "nft", "list", "tables"); !strings.Contains(tabs, "mwgc-distrib") {
			t.Fatalf("%s has no distribution table before its stop: %s", n, tabs)
		}
		x.agents[n].Proc.Terminate()
		if err := x.agents[n].Proc.Wait(10 * time.Second); err != nil {
			t.Fatalf("%s did not stop: %v", n, err)
		}
		if tabs := x.l.Run(n, "nft", "list", "tables"); strings.Contains(tabs, "mwgc-distrib") || !strings.Contains(tabs, "someone-else") {
			t.Errorf("%s after its stop: %s", n, tabs)
		}
	}
}

// download fetches size bytes through the VIP from client, reading at
// about 4 MB/s so that it lasts across a failover; it returns an error
// unless every byte arrived.
func (x *lab) download(client netip.Addr, size int, started chan<- struct{}) error {
	var c net.Conn
	err := x.l.Do("c", func() error {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: client.AsSlice()}}
		var err error
		c, err = d.Dial("tcp4", service.String())
		return err
	})
	close(started)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /bytes/%d HTTP/1.0\r\n\r\n", size)
	buf := make([]byte, 16<<10)
	total := 0
	for {
		n, err := c.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", total, err)
		}
		time.Sleep(4 * time.Millisecond)
	}
	_, body, _ := strings.Cut(string(buf), "\r\n\r\n")
	_ = body
	// The header precedes the body; count only the body.
	if total < size || total > size+200 {
		return fmt.Errorf("got %d bytes, want %d and a header", total, size)
	}
	return nil
}
