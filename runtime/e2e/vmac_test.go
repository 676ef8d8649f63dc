package e2e

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// The peers of these tests run VRID 9 on eth0 with the virtual MAC
// 00:00:5e:00:01:09; mwgc (priority 200) beside keepalived or FRR (100).
const (
	vmacVIP  = "192.0.2.109"
	vmacMAC  = "00:00:5e:00:01:09"
	peerAddr = "192.0.2.42"
)

// vmacPeerLab starts the other implementation first (it becomes the
// Active), then mwgc with a virtual MAC on the same VRID (it preempts), with
// a client pinging the VIP every 10 ms on a bridge that learns MACs.
type vmacPeerLab struct {
	lab     *netlab.Lab
	agent   *Agent
	prober  *Prober
	capture *netlab.Capture
}

func newVMACPeerLab(t *testing.T, startPeer func(lab *netlab.Lab), peerMaster func() bool) *vmacPeerLab {
	lab := netlab.New(t, "m", "p", "cl")
	lab.LearnMACs(300)
	c := &Cluster{
		Name:      "vmac",
		Directors: []Director{{Node: "m", Priority: 200, Index: 11}},
		Groups: []Group{{Name: "lan", VRID: 9, Iface: "eth0", Family: plan.FamilyIPv4,
			VIPs: []string{vmacVIP + "/24"}, Interval: 100 * time.Millisecond, VirtualMAC: true}},
		External: []ExternalPeer{{Name: "p", Addr: netip.MustParseAddr(peerAddr), Priority: 100}},
	}
	c.SetupAddresses(lab)
	lab.AddAddr("p", peerAddr+"/24")
	lab.AddAddr("cl", "192.0.2.50/24")
	l := &vmacPeerLab{lab: lab}
	l.capture = lab.Capture("ip proto 112 or arp")
	startPeer(lab)
	Eventually(t, 10*time.Second, "the peer is Active", func() (bool, string) { return peerMaster(), "" })
	l.prober = StartProber(t, lab, "cl", netip.MustParseAddr(vmacVIP), 10*time.Millisecond, 0)
	time.Sleep(300 * time.Millisecond)
	l.agent = StartAgent(t, lab, c.Plan("m"))
	waitState(t, l.agent, "Active", 5*time.Second)
	return l
}

// check: every advert of VRID 9 and every announcement of the VIP came
// from the virtual MAC (so the client's entry never changed), the client
// still has it, and it reached the VIP within one advert interval of
// every change of Active.
func (l *vmacPeerLab) check(t *testing.T, changes []Phase) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	l.prober.Stop()
	pcap := l.capture.Stop()
	rows, err := netlab.Decode(pcap, "vrrp.virt_rtr_id == 9 or (arp and arp.src.proto_ipv4 == "+vmacVIP+")", "eth.src", "ip.src", "_ws.col.Protocol")
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]int{}
	for _, r := range rows {
		switch r[0] {
		case vmacMAC:
		case l.lab.MAC("m"):
			t.Errorf("mwgc sent %s from its interface's MAC %s, not the virtual MAC", r[2], r[0])
		default:
			// keepalived sets no arp_announce: its node's own ARP requests
			// name the VIP with the parent's MAC. Not ours to judge.
			t.Logf("the peer's node sent %s from %s", r[2], r[0])
		}
		from[r[1]]++
	}
	if from["192.0.2.11"] == 0 || from[peerAddr] == 0 {
		t.Errorf("adverts by source: %v, want both mwgc and the peer", from)
	}
	if n := l.lab.Run("cl", "ip", "neigh", "show", vmacVIP); !strings.Contains(n, vmacMAC) {
		t.Errorf("the client's neighbour entry for the VIP: %q, want the virtual MAC", n)
	}
	ads, err := netlab.DecodeVRRP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range changes {
		r := Analyze(ph, l.prober, ads)
		t.Log(r)
		if r.Blackhole() {
			t.Errorf("%s: the client was cut off after the election settled", ph.Label())
		}
	}
}

// phase records one change of Active: from, and (after settling) to.
func phase(p *Pair, label FaultKind, from time.Time) Phase {
	return Phase{Pair: p, Kind: label, From: from, CauseGone: from, To: time.Now()}
}

// TestVirtualMACWithKeepalived: keepalived 2.2.7 with use_vmac and mwgc
// with a virtual MAC on one VRID. keepalived's macvlan is in private mode
// (frames from "its" MAC reach only the macvlan, where it listens), mwgc's
// in bridge mode; each hears the other. mwgc preempts keepalived, hands
// back on SIGTERM, preempts again after a restart; the client's entry for
// the VIP is the virtual MAC throughout.
func TestVirtualMACWithKeepalived(t *testing.T) {
	netlab.Require(t, "keepalived")
	var k *netlab.Keepalived
	l := newVMACPeerLab(t, func(lab *netlab.Lab) {
		k = lab.StartKeepalived("p", netlab.KeepalivedConfig{Instances: []netlab.KeepalivedInstance{{
			VRID: 9, Priority: 100, AdvertInterval: 100 * time.Millisecond, VIPs: []string{vmacVIP + "/24"}, Extra: []string{"use_vmac"}}}})
	}, func() bool { return k.WaitState("VI_9", "MASTER", 1, 0) })
	if !k.WaitState("VI_9", "BACKUP", 2, 5*time.Second) { // init, then after mwgc preempted
		t.Fatalf("keepalived did not yield to mwgc:\n%s", k.Log())
	}
	p := &Pair{Name: "mwgc and keepalived", VRID: 9, Interval: 100 * time.Millisecond}
	var changes []Phase

	from := time.Now()
	l.agent.Proc.Signal(syscall.SIGTERM)
	if err := l.agent.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not stop: %v", err)
	}
	if !k.WaitState("VI_9", "MASTER", 2, 5*time.Second) {
		t.Fatalf("keepalived did not take over:\n%s", k.Log())
	}
	time.Sleep(300 * time.Millisecond)
	changes = append(changes, phase(p, "SIGTERM of mwgc", from))

	from = time.Now()
	l.agent.Start(t)
	waitState(t, l.agent, "Active", 5*time.Second)
	if !k.WaitState("VI_9", "BACKUP", 3, 5*time.Second) {
		t.Fatalf("keepalived did not yield again:\n%s", k.Log())
	}
	time.Sleep(300 * time.Millisecond)
	changes = append(changes, phase(p, "mwgc back", from))
	l.check(t, changes)
}

// TestVirtualMACWithFRR: FRR's vrrpd (on the macvlan it needs, bridge
// mode) and mwgc with a virtual MAC on one VRID: mwgc preempts FRR, FRR
// takes over on SIGTERM of mwgc and yields when it is back.
func TestVirtualMACWithFRR(t *testing.T) {
	var f *netlab.FRR
	l := newVMACPeerLab(t, func(lab *netlab.Lab) {
		f = lab.StartFRR("p", netlab.FRRInstance{VRID: 9, Priority: 100, AdvertInterval: 100 * time.Millisecond, VIPs: []string{vmacVIP + "/24"}})
	}, func() bool { return f.WaitState("Master", 1, 0) })
	if !f.WaitState("Backup", 2, 5*time.Second) { // Initialize -> Backup at start, then Master -> Backup
		t.Fatalf("FRR did not yield to mwgc:\n%s", f.Log())
	}
	p := &Pair{Name: "mwgc and FRR", VRID: 9, Interval: 100 * time.Millisecond}
	var changes []Phase

	from := time.Now()
	l.agent.Proc.Signal(syscall.SIGTERM)
	if err := l.agent.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not stop: %v", err)
	}
	if !f.WaitState("Master", 2, 5*time.Second) {
		t.Fatalf("FRR did not take over:\n%s", f.Log())
	}
	time.Sleep(300 * time.Millisecond)
	changes = append(changes, phase(p, "SIGTERM of mwgc", from))

	from = time.Now()
	l.agent.Start(t)
	waitState(t, l.agent, "Active", 5*time.Second)
	if !f.WaitState("Backup", 3, 5*time.Second) {
		t.Fatalf("FRR did not yield again:\n%s", f.Log())
	}
	time.Sleep(300 * time.Millisecond)
	changes = append(changes, phase(p, "mwgc back", from))
	l.check(t, changes)
}
