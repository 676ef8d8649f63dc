package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// clientLab is two mwgc directors (a: 200, b: 100) and a client (cl)
// pinging the VIP every 10 ms and exchanging TCP messages with it, on a
// bridge that learns MACs like a switch, with an observer capturing VRRP
// and sampling who holds the VIP. vmac runs the group with its virtual MAC;
// a sourcePort other than 0 makes every TCP connection of the client come
// from that port (StartProberFrom).
type clientLab struct {
	lab     *netlab.Lab
	pair    *Pair
	prober  *Prober
	holders *Holders
	capture *netlab.Capture
}

const (
	clientVIP  = "192.0.2.100"
	clientPort = 7007
)

func newClientLab(t *testing.T, vmac bool, sourcePort int) *clientLab {
	lab := netlab.New(t, "a", "b", "cl")
	lab.LearnMACs(300)
	c := &Cluster{
		Name: "client",
		Directors: []Director{
			{Node: "a", Priority: 200, Index: 11},
			{Node: "b", Priority: 100, Index: 12},
		},
		Groups: []Group{{Name: "lan", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4,
			VIPs: []string{clientVIP + "/24"}, Interval: 100 * time.Millisecond, VirtualMAC: vmac}},
	}
	c.SetupAddresses(lab)
	lab.AddAddr("cl", "192.0.2.50/24")
	vip := netip.MustParseAddr(clientVIP)
	cl := &clientLab{lab: lab}
	cl.capture = lab.Capture(vrrpFilter)
	cl.holders = StartHolders(t, lab, []string{"a", "b"}, []netip.Addr{vip}, 10*time.Millisecond)
	StartEchoServer(t, lab, "a", clientPort)
	StartEchoServer(t, lab, "b", clientPort)
	b := StartAgent(t, lab, c.Plan("b"))
	a := StartAgent(t, lab, c.Plan("a"))
	name := "mwgc"
	if vmac {
		name = "mwgc virtual MAC"
	}
	cl.pair = MwgcPair(name, a, b, 51, vip, 100*time.Millisecond, 100)
	if !cl.holders.WaitSole(vip, "a", time.Second, 10*time.Second) {
		t.Fatalf("a does not hold the VIP alone:\n%s", cl.holders.String(vip, time.Time{}))
	}
	cl.prober = StartProberFrom(t, lab, "cl", vip, 10*time.Millisecond, clientPort, sourcePort)
	return cl
}

// TestClientAfterPartitionAndPause: after a 1 s partition between the
// directors heals, and after the Active is stopped (SIGSTOP) for 1 s and
// continued, two routers were Active and both announced the VIP; the one
// that stays Active must announce it again, so the client reaches the VIP
// within one advert interval of the election settling. Before the
// re-announcement, clients stayed on the loser's MAC for 5-6 s. With a
// virtual MAC, the switch relearns the MAC from the Active's adverts.
func TestClientAfterPartitionAndPause(t *testing.T) {
	for _, vmac := range []bool{false, true} {
		name := "interface MAC"
		if vmac {
			name = "virtual MAC"
		}
		t.Run(name, func(t *testing.T) {
			cl := newClientLab(t, vmac, 0)
			var phases []Phase
			for _, kind := range []FaultKind{FaultPartition, FaultPause} {
				ph, err := RunFault(t, cl.lab, cl.pair, cl.holders, kind, Timing{Partition: time.Second, Pause: time.Second, Margin: 300 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				phases = append(phases, ph...)
			}
			time.Sleep(200 * time.Millisecond)
			cl.prober.Stop()
			ads, err := netlab.DecodeVRRP(cl.capture.Stop())
			if err != nil {
				t.Fatal(err)
			}
			if vmac {
				if n := cl.lab.Run("cl", "ip", "neigh", "show", clientVIP); !strings.Contains(n, "00:00:5e:00:01:33") {
					t.Errorf("the client's neighbour entry for the VIP is not the virtual MAC: %q", n)
				}
			}
			for _, ph := range phases {
				r := Analyze(ph, cl.prober, ads)
				t.Log(r)
				if r.Settled.Equal(ph.From) {
					t.Errorf("%s: the capture shows no second Active: the fault did not split the pair", ph.Label())
				}
				if r.Blackhole() {
					t.Errorf("%s: the client was cut off after the election settled: %v", ph.Label(), r)
				}
			}
		})
	}
}

// TestClientTCPSameFourTuple: a director that lost the VIP must not keep
// its connections on it. The client reconnects from one source port, so
// each connection has the 4-tuple of the one before (ephemeral ports come
// round again; a split brain makes the client reconnect dozens of times).
// SIGTERM and kill -9 of the Active, each followed by its return, with a
// virtual MAC. Judged from outside the agents: at the end of every phase
// the director that does not hold the VIP has no TCP connection on it
// (sock_diag in its namespace), and after the election settled the
// client's TCP exchange carries data again before the phase ends. A
// socket left behind answered the same 4-tuple's segments with
// out-of-window ACKs when its director became Active again, and the
// client hung without a reset (clientbench: 0.8 s after kill -9, 1.8 s
// after SIGSTOP, every trial once it happened).
func TestClientTCPSameFourTuple(t *testing.T) {
	cl := newClientLab(t, true, 47001)
	vip := cl.pair.VIP
	var phases []Phase
	for _, kind := range []FaultKind{FaultTerm, FaultKill} {
		ph, err := RunFault(t, cl.lab, cl.pair, cl.holders, kind, Timing{Margin: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		phases = append(phases, ph...)
		for _, node := range []string{"a", "b"} {
			if slices.Contains(cl.holders.Now(vip), node) {
				continue
			}
			conns, err := Connections(cl.lab, node, vip)
			if err != nil {
				t.Fatalf("listing the connections of %s: %v", node, err)
			}
			if len(conns) > 0 {
				t.Errorf("after %s: %s does not hold %v but keeps connections on it: %v", ph[len(ph)-1].Label(), node, vip, conns)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	cl.prober.Stop()
	ads, err := netlab.DecodeVRRP(cl.capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range phases {
		r := Analyze(ph, cl.prober, ads)
		t.Log(r)
		through := slices.ContainsFunc(cl.prober.TCP(r.Settled.Add(ph.Pair.Interval), ph.To), func(pr Probe) bool {
			return !pr.Answered.IsZero() && pr.Answered.Before(ph.To)
		})
		if !through {
			t.Errorf("%s: the client's TCP exchange carried nothing from one advert interval after the election settled to the end of the phase (%v): %v",
				ph.Label(), ph.To.Sub(r.Settled).Round(time.Millisecond), r)
		}
	}
}
