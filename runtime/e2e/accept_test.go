package e2e

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// echo sends one ICMP echo request from lab node from to dst and reports
// whether a reply came within 500 ms.
func echo(t *testing.T, lab *netlab.Lab, from, dst string) bool {
	t.Helper()
	answered := false
	err := lab.Do(from, func() error {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("mwgc")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 1500)
		for {
			n, peer, err := c.ReadFrom(buf)
			if err != nil {
				return nil // no reply in time
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err == nil && m.Type == ipv4.ICMPTypeEchoReply && peer.String() == dst {
				answered = true
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return answered
}

// TestAcceptMode: compiled from CUE, a group with acceptMode: false and
// one with the default. The Active answers a client's ping to its own
// address and to the VIP of the group with accept mode, and not to the
// VIP of the strict group (RFC 9568 §6.4.3), which it holds all the same;
// its nftables table is its own, and a graceful stop removes it.
func TestAcceptMode(t *testing.T) {
	lab := netlab.New(t, "a", "b", "c")
	netlab.Require(t, "nft")
	c := pair()
	c.Groups = []Group{
		{Name: "strict", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"}, StrictAccept: true},
		{Name: "open", VRID: 52, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.101/24"}},
	}
	c.SetupAddresses(lab)
	lab.AddAddr("c", "192.0.2.50/24")
	a := StartAgent(t, lab, c.Plan("a"))
	b := StartAgent(t, lab, c.Plan("b"))
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 5*time.Second)
	Eventually(t, 2*time.Second, "a holds both VIPs", func() (bool, string) {
		return lab.HasAddr("a", "192.0.2.100/24") && lab.HasAddr("a", "192.0.2.101/24"), strings.Join(lab.Addrs("a"), " ")
	})
	for dst, want := range map[string]bool{"192.0.2.11": true, "192.0.2.101": true, "192.0.2.100": false} {
		if got := echo(t, lab, "c", dst); got != want {
			t.Errorf("ping %s from a client: answered %v, want %v", dst, got, want)
		}
	}
	s, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range s.Groups {
		if want := g.Name == "open"; g.AcceptsTraffic != want {
			t.Errorf("status of group %s: acceptsTraffic %v, want %v", g.Name, g.AcceptsTraffic, want)
		}
	}
	// The Backup filters the same VIP (it is no local address there yet):
	// a takeover changes no rule.
	for _, node := range []string{"a", "b"} {
		if out := lab.Run(node, "nft", "list", "table", "inet", "mwgc"); !strings.Contains(out, "192.0.2.100") || strings.Contains(out, "192.0.2.101") {
			t.Errorf("%s's table inet mwgc:\n%s", node, out)
		}
	}
	if err := a.Proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	a.Proc.Wait(5 * time.Second)
	if out := lab.Run("a", "nft", "list", "tables"); strings.Contains(out, "mwgc") {
		t.Errorf("tables after a graceful stop: %q", out)
	}
	waitState(t, b, "Active", 3*time.Second)
	if echo(t, lab, "c", "192.0.2.100") || !echo(t, lab, "c", "192.0.2.101") {
		t.Error("the new Active does not enforce accept mode as the old one did")
	}
}
