package forward

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/forward/fwdtest"
	"github.com/mwgc/mwgc/runtime/netlab"
)

// driverIn returns a driver for node's namespace.
func driverIn(t *testing.T, l *netlab.Lab, node string) *Driver {
	t.Helper()
	h, err := netns.GetFromName(l.NS(node))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return New(nftables.WithNetNSFd(int(h)))
}

var (
	vip      = netip.MustParseAddr("192.0.2.100")
	service  = netip.AddrPortFrom(vip, 80)
	nodeAddr = map[string]string{"d": "192.0.2.1", "n1": "192.0.2.11", "n2": "192.0.2.12", "n3": "192.0.2.13"}
)

type rig struct {
	l       *netlab.Lab
	proxies map[string]*fwdtest.Proxy
	drv     map[string]*Driver
	clients []netip.Addr
	seed    uint32
}

// newRig: a client namespace with 100 addresses, a director d holding the
// VIP, nodes n1..n3; every node (d too) runs a stand-in proxy on :9090.
func newRig(t *testing.T) *rig {
	netlab.Require(t, "ip", "nft")
	l := netlab.New(t, "c", "d", "n1", "n2", "n3")
	learningSwitch(t, l)
	r := &rig{l: l, drv: map[string]*Driver{}, proxies: map[string]*fwdtest.Proxy{}, seed: distrib.Seed("lab")}
	for n, a := range nodeAddr {
		l.AddAddr(n, a+"/24")
		r.proxies[n] = fwdtest.Serve(t, l, n, "0.0.0.0:9090")
		r.drv[n] = driverIn(t, l, n)
	}
	l.AddAddr("d", vip.String()+"/24")
	r.clients = fwdtest.Clients(t, l, "c", netip.MustParseAddr("192.0.2.128"), 100, 24)
	return r
}

// director builds d's l2 forwarding over backends (names of the rig).
func (r *rig) director(t *testing.T, backends []string) (Director, distrib.Table) {
	t.Helper()
	var bs []distrib.Backend
	for _, b := range backends {
		bs = append(bs, distrib.Backend{Name: b, Weight: 1})
	}
	tb := distrib.Build(bs, distrib.DefaultSlots)
	var idx int
	var dmac net.HardwareAddr
	r.l.Do("d", func() error {
		in, err := net.InterfaceByName("eth0")
		if err == nil {
			idx, dmac = in.Index, in.HardwareAddr
		}
		return err
	})
	dir := Director{L2: true, VIPInterface: "eth0", OutIfindex: idx, OutInterface: "eth0", OutMAC: dmac,
		VIPs: []netip.Addr{vip}, Ports: []uint16{80, 443}, ProxyPort: 9090, Seed: r.seed,
		Self: netip.MustParseAddr(nodeAddr["d"]), Slots: make([]Target, distrib.DefaultSlots)}
	macs := map[string]net.HardwareAddr{}
	for _, n := range []string{"n1", "n2", "n3"} {
		m, _ := net.ParseMAC(r.l.MAC(n))
		macs[n] = m
	}
	for s := range dir.Slots {
		if n := tb.Name(s); n != "d" && n != "" {
			dir.Slots[s] = Target{MAC: macs[n], Addr: netip.MustParseAddr(nodeAddr[n])}
		}
	}
	return dir, tb
}

func (r *rig) nodeRules(t *testing.T) {
	t.Helper()
	for _, n := range []string{"d", "n1", "n2", "n3"} {
		if err := r.drv[n].Apply(State{Node: &Node{VIPs: []netip.Addr{vip}, Ports: []uint16{80, 443}, ProxyPort: 9090}}); err != nil {
			t.Fatalf("node rules on %s: %v", n, err)
		}
	}
}

// check asks from every client and compares who answered with the Go
// model of the kernel's hash: every client must land where distrib says.
func (r *rig) check(t *testing.T, tb distrib.Table) map[netip.Addr]string {
	t.Helper()
	got := fwdtest.AskAll(r.l, "c", r.clients, service, 2*time.Second)
	bad := 0
	for _, c := range r.clients {
		if want := distrib.ClientNode(tb, c, r.seed); got[c] != want {
			bad++
			if bad <= 5 {
				t.Errorf("client %v answered by %q, the table says %q", c, got[c], want)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d clients not where the Go model of jhash puts them", bad, len(r.clients))
	}
	return got
}

func (r *rig) tables(node string) string {
	return r.l.Run(node, "nft", "list", "tables")
}

func TestL2ForwardingMatchesTheModel(t *testing.T) {
	r := newRig(t)
	// A table of someone else's, which must survive everything below.
	r.l.Run("d", "nft", "add", "table", "inet", "other")
	r.nodeRules(t)
	all := []string{"d", "n1", "n2", "n3"}
	dir, tb := r.director(t, all)
	if err := r.drv["d"].Apply(State{Director: &dir, Node: r.drv["d"].Applied().Node}); err != nil {
		t.Fatal(err)
	}
	before := r.check(t, tb)
	// l2: the node sees the client itself and answers it directly.
	if peers := r.proxies["n1"].Peers(); peers[netip.MustParseAddr(nodeAddr["d"])] != 0 || len(peers) == 0 {
		t.Errorf("l2: n1 saw %v, want clients only", peers)
	}
	counts := fwdtest.Tally(before)
	t.Logf("100 clients over 4 nodes: %v, max/min %.2f", counts, fwdtest.Spread(counts, all))
	if fwdtest.Spread(counts, all) == 0 {
		t.Fatalf("a node got no client: %v", counts)
	}

	// n2 leaves the table: only its clients move, to where the model says.
	dir2, tb2 := r.director(t, []string{"d", "n1", "n3"})
	if err := r.drv["d"].Apply(State{Director: &dir2, Node: r.drv["d"].Applied().Node}); err != nil {
		t.Fatal(err)
	}
	after := r.check(t, tb2)
	for _, c := range r.clients {
		if before[c] != after[c] && before[c] != "n2" {
			t.Errorf("client %v moved from %s to %s, though only n2 left", c, before[c], after[c])
		}
	}

	// n2 back (only map elements change), after someone removed our
	// netdev table: the incremental change fails and a full rebuild
	// restores it.
	r.l.Run("d", "nft", "delete", "table", "netdev", TableName)
	if err := r.drv["d"].Apply(State{Director: &dir, Node: r.drv["d"].Applied().Node}); err != nil {
		t.Fatal(err)
	}
	if again := r.check(t, tb); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Fatal("with n2 back, clients are not where they were")
	}

	// Hold: the distributed traffic is dropped, nothing answers.
	dir2.Hold = true
	if err := r.drv["d"].Apply(State{Director: &dir2, Node: r.drv["d"].Applied().Node}); err != nil {
		t.Fatal(err)
	}
	var err error
	r.l.Do("c", func() error {
		_, err = fwdtest.Ask(r.clients[0], service, 300*time.Millisecond)
		return nil
	})
	if err == nil {
		t.Fatal("a client got an answer while the director holds")
	}

	// Clean: both tables gone, the foreign table untouched.
	if err := r.drv["d"].Clean(); err != nil {
		t.Fatal(err)
	}
	if tabs := r.tables("d"); strings.Contains(tabs, TableName) || !strings.Contains(tabs, "table inet other") {
		t.Fatalf("after Clean: %s", tabs)
	}
}

// TestCleanRemovesLeftovers: a table left by a crashed run (made here by
// another driver) is removed by a fresh driver's Clean.
func TestCleanRemovesLeftovers(t *testing.T) {
	netlab.Require(t, "ip", "nft")
	l := netlab.New(t, "d")
	l.AddAddr("d", "192.0.2.1/24")
	crashed := driverIn(t, l, "d")
	if err := crashed.Apply(State{Node: &Node{VIPs: []netip.Addr{vip}, Ports: []uint16{80}, ProxyPort: 9090}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Run("d", "nft", "list", "tables"), "ip "+TableName) {
		t.Fatal("no table to clean")
	}
	if err := driverIn(t, l, "d").Clean(); err != nil {
		t.Fatal(err)
	}
	if tabs := l.Run("d", "nft", "list", "tables"); strings.Contains(tabs, TableName) {
		t.Fatalf("leftover after Clean: %s", tabs)
	}
	if err := driverIn(t, l, "d").Apply(State{Node: &Node{}}); err == nil {
		t.Fatal("an incomplete node state was applied")
	}
}

func TestNATForwardingMatchesTheModel(t *testing.T) {
	r := newRig(t)
	r.l.Run("d", "sysctl", "-qw", "net.ipv4.ip_forward=1")
	all := []string{"d", "n1", "n2", "n3"}
	dir, tb := r.director(t, all)
	dir.L2 = false
	if err := r.drv["d"].Apply(State{Director: &dir}); err != nil {
		t.Fatal(err)
	}
	got := r.check(t, tb)
	t.Logf("nat: %v", fwdtest.Tally(got))
	// The nodes saw the director, not the client (masquerade: replies
	// come back through it, whatever the nodes' routes say).
	for _, n := range []string{"n1", "n2", "n3"} {
		peers := r.proxies[n].Peers()
		if len(peers) != 1 || peers[netip.MustParseAddr(nodeAddr["d"])] == 0 {
			t.Errorf("nat: %s saw %v, want only the director %s", n, peers, nodeAddr["d"])
		}
	}
}

// learningSwitch makes the lab's bridge learn MACs, like a real switch:
// netlab's hub would hide a director that forwards frames with the
// client's source MAC (the switch then sends the client's traffic to the
// director's port).
func learningSwitch(t *testing.T, l *netlab.Lab) {
	t.Helper()
	l.Run("sw", "ip", "link", "set", "br0", "type", "bridge", "ageing_time", "30000")
}
