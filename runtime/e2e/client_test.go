package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// clientLab is two mwgc directors (a: 200, b: 100) and a client (cl)
// pinging the VIP every 10 ms and exchanging TCP messages with it, on a
// bridge that learns MACs like a switch, with an observer capturing VRRP
// and sampling who holds the VIP. vmac runs the group with its virtual MAC.
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

func newClientLab(t *testing.T, vmac bool) *clientLab {
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
	cl.prober = StartProber(t, lab, "cl", vip, 10*time.Millisecond, clientPort)
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
			cl := newClientLab(t, vmac)
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
