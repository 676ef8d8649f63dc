// Command distbench measures traffic distribution side by side in one run
// (make bench; root): throughput through the director in l2 and nat mode
// against the client talking to the node directly (iperf3); the time from
// a node declared down to the new map in the kernel; the fraction of
// clients moved when a node leaves or comes back, against the ideal 1/N.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/mwgc/mwgc/runtime/distrib"
	"github.com/mwgc/mwgc/runtime/distributor"
	"github.com/mwgc/mwgc/runtime/e2e"
	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

func main() {
	e2e.InitFlags()
	rounds := flag.Int("rounds", 3, "iperf3 rounds per path (alternating)")
	seconds := flag.Int("seconds", 3, "seconds per iperf3 run")
	trials := flag.Int("trials", 20, "trials of node down to map in the kernel")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "distbench: needs root (network namespaces)")
		os.Exit(2)
	}
	failed := e2e.RunTB(func(tb testing.TB) {
		throughput(tb, *rounds, *seconds)
		reprogram(tb, *trials)
		moved()
	})
	if failed {
		fmt.Fprintln(os.Stderr, "distbench: the run failed (see above)")
		os.Exit(1)
	}
}

var (
	vip     = netip.MustParseAddr("192.0.2.100")
	dirAddr = netip.MustParseAddr("192.0.2.1")
	nodeIP  = netip.MustParseAddr("192.0.2.11")
	client  = "192.0.2.50"
)

func driverIn(tb testing.TB, l *netlab.Lab, node string) *forward.Driver {
	h, err := netns.GetFromName(l.NS(node))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return forward.New(nftables.WithNetNSFd(int(h)))
}

// throughput: client c, director d (VIP), node n running iperf3 on the
// proxy port. The bridge learns MACs (a switch, not netlab's default hub).
func throughput(tb testing.TB, rounds, seconds int) {
	netlab.Require(tb, "iperf3", "nft")
	l := netlab.New(tb, "c", "d", "n")
	l.Run("sw", "ip", "link", "set", "br0", "type", "bridge", "ageing_time", "30000")
	l.AddAddr("c", client+"/24")
	l.AddAddr("d", dirAddr.String()+"/24")
	l.AddAddr("d", vip.String()+"/24")
	l.AddAddr("n", nodeIP.String()+"/24")
	l.Run("d", "sysctl", "-qw", "net.ipv4.ip_forward=1")
	srv := l.Start("n", "iperf3", "-s", "-p", "9090")
	time.Sleep(300 * time.Millisecond)
	defer srv.Kill()

	dd, nd := driverIn(tb, l, "d"), driverIn(tb, l, "n")
	var idx int
	var dmac net.HardwareAddr
	l.Do("d", func() error {
		in, err := net.InterfaceByName("eth0")
		if err == nil {
			idx, dmac = in.Index, in.HardwareAddr
		}
		return err
	})
	mac, _ := net.ParseMAC(l.MAC("n"))
	slots := make([]forward.Target, distrib.DefaultSlots)
	for i := range slots {
		slots[i] = forward.Target{MAC: mac, Addr: nodeIP} // one node: every client to it
	}
	dir := forward.Director{VIPInterface: "eth0", OutIfindex: idx, OutInterface: "eth0", OutMAC: dmac, VIPs: []netip.Addr{vip},
		Ports: []uint16{80}, ProxyPort: 9090, Seed: 1, Slots: slots, Self: dirAddr}
	if err := nd.Apply(forward.State{Node: &forward.Node{VIPs: []netip.Addr{vip}, Ports: []uint16{80}, ProxyPort: 9090}}); err != nil {
		tb.Fatal(err)
	}
	run := func(target string, port int) float64 {
		out := l.Run("c", "iperf3", "-J", "-c", target, "-p", fmt.Sprint(port), "-t", fmt.Sprint(seconds))
		var r struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			tb.Fatalf("iperf3 output: %v", err)
		}
		return r.End.SumReceived.BitsPerSecond / 1e9
	}
	res := map[string][]float64{}
	for range rounds {
		dd.Clean()
		res["direct"] = append(res["direct"], run(nodeIP.String(), 9090))
		dir.L2 = true
		if err := dd.Apply(forward.State{Director: &dir}); err != nil {
			tb.Fatal(err)
		}
		res["l2"] = append(res["l2"], run(vip.String(), 80))
		dir.L2 = false
		if err := dd.Apply(forward.State{Director: &dir}); err != nil {
			tb.Fatal(err)
		}
		res["nat"] = append(res["nat"], run(vip.String(), 80))
	}
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	fmt.Printf("\n== Throughput through the director (iperf3 -t %d, one TCP stream, %d alternating rounds, median; veth + bridge, shared machine)\n", seconds, rounds)
	fmt.Printf("| path | Gbit/s median (rounds) | ratio to direct, median of the rounds' ratios (each round's paths run back to back) |\n|---|---|---|\n")
	for _, k := range []string{"direct", "l2", "nat"} {
		var ratios []float64
		for i := range res[k] {
			ratios = append(ratios, res[k][i]/res["direct"][i])
		}
		fmt.Printf("| %s | %.2f (%s) | %.2f (%s) |\n", k, med(res[k]), fmts(res[k]), med(ratios), fmts(ratios))
	}
}

func fmts(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, " ")
}

// reprogram: in a namespace with the real kernel, a node is marked down in
// the table at t0; the transaction carrying the new map has committed at
// t1. t1 - t0 is decision plus nftables transaction.
func reprogram(tb testing.TB, trials int) {
	l := netlab.New(tb, "d")
	l.AddAddr("d", dirAddr.String()+"/24")
	fmt.Printf("\n== From a node declared down to the new map in the kernel (%d trials each, 4,096 slots)\n", trials)
	fmt.Printf("| nodes | median | max |\n|---|---|---|\n")
	for _, n := range []int{4, 16, 64} {
		var d []time.Duration
		l.Do("d", func() error {
			d = reprogramN(tb, n, trials)
			return nil
		})
		slices.Sort(d)
		fmt.Printf("| %d | %v | %v |\n", n, d[len(d)/2].Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
	}
}

// reprogramN runs inside the namespace (on its locked thread): what the
// node and its executor do when the management table marks a node down —
// decide (distributor.Desired) and apply (runtime/forward, only the
// changed map elements) — timed from the table change to the commit.
func reprogramN(tb testing.TB, n, trials int) []time.Duration {
	p := &plan.Plan{Node: "d", VRRP: &plan.VRRP{Priority: 200},
		Interfaces: []plan.Interface{{Name: "eth0", Addresses: []netip.Prefix{netip.PrefixFrom(dirAddr, 24)}}},
		Management: &plan.Management{DiscoveryInterval: plan.Duration(time.Second), Version: 2},
		Distribution: &plan.Distribution{Mode: plan.DistributionL2, VIPs: []netip.Addr{vip}, Ports: []int{80, 443},
			ProxyPort: 9090, Interface: "eth0", VIPInterface: "eth0", Scans: true, Slots: distrib.DefaultSlots,
			Seed: 7, DirectorsScan: true}}
	table := mgmt.Status{Active: true}
	for i := range n {
		name := fmt.Sprintf("n%02d", i)
		p.Distribution.Nodes = append(p.Distribution.Nodes, plan.DistributionNode{Name: name, Address: netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})})
		table.Nodes = append(table.Nodes, engine.Node{Name: name, Status: engine.StatusUp, Health: "available",
			Reported: true, Serving: true, MAC: fmt.Sprintf("02:00:00:00:00:%02x", i+1)})
	}
	in, err := net.InterfaceByName("eth0")
	if err != nil {
		tb.Fatal(err)
	}
	drv := forward.New()
	defer drv.Clean()
	apply := func() {
		st, _, _ := distributor.Desired(distributor.Input{Plan: p, Active: true, Table: table})
		st.Director.OutIfindex, st.Director.OutMAC = in.Index, in.HardwareAddr
		if err := drv.Apply(st); err != nil {
			tb.Fatal(err)
		}
	}
	apply()
	var out []time.Duration
	for i := range trials {
		victim := i % n
		for _, up := range []bool{false, true} {
			table.Nodes[victim].Status = map[bool]engine.Status{true: engine.StatusUp, false: engine.StatusDown}[up]
			t0 := time.Now()
			apply()
			if !up {
				out = append(out, time.Since(t0))
			}
		}
	}
	return out
}

// moved: clients moved when one of N nodes leaves or comes back, 10,000
// random clients, against the ideal 1/N.
func moved() {
	r := rand.New(rand.NewPCG(3, 4))
	clients := make([]netip.Addr, 10000)
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	seed := distrib.Seed("bench")
	fmt.Printf("\n== Clients moved when one of N nodes leaves (or comes back), 10,000 random clients, 4,096 slots\n")
	fmt.Printf("| N | moved | ideal 1/N | clients of other nodes moved |\n|---|---|---|---|\n")
	for _, n := range []int{2, 3, 4, 5, 8, 16} {
		var bs []distrib.Backend
		for i := range n {
			bs = append(bs, distrib.Backend{Name: fmt.Sprintf("node-%d", i), Weight: 1})
		}
		full, part := distrib.Build(bs, distrib.DefaultSlots), distrib.Build(bs[1:], distrib.DefaultSlots)
		mv, other := 0, 0
		for _, c := range clients {
			a, b := distrib.ClientNode(full, c, seed), distrib.ClientNode(part, c, seed)
			if a != b {
				mv++
				if a != bs[0].Name {
					other++
				}
			}
		}
		fmt.Printf("| %d | %.3f | %.3f | %d |\n", n, float64(mv)/float64(len(clients)), 1/float64(n), other)
	}
}
